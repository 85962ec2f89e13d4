// Package local keeps repository objects in a folder on a local file system.
//
// Layout: config at the top, one folder per object type, and packs spread
// over 256 sub-folders by the first two characters of their name so that no
// folder grows huge. Every write goes to a temporary file in the target
// folder, is synced, renamed into place, and the folder is synced, so a crash
// leaves either the old state or the whole new object.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-backup/cairn/internal/store"
)

// Store is a store.Store in a local folder.
type Store struct {
	root string
}

var _ store.Store = (*Store)(nil)

const tmpPrefix = ".tmp-"

// Create makes the folder structure of a new store at root. It fails if
// root already holds a config object.
func Create(root string) (*Store, error) {
	if _, err := os.Stat(filepath.Join(root, store.ConfigName)); err == nil {
		return nil, fmt.Errorf("create store %s: %w", root, fs.ErrExist)
	}
	for _, t := range store.Types {
		if t == store.Config {
			continue
		}
		if err := os.MkdirAll(filepath.Join(root, string(t)), 0o700); err != nil {
			return nil, fmt.Errorf("create store %s: %w", root, err)
		}
	}
	for i := 0; i < 256; i++ {
		if err := os.MkdirAll(filepath.Join(root, string(store.Pack), fmt.Sprintf("%02x", i)), 0o700); err != nil {
			return nil, fmt.Errorf("create store %s: %w", root, err)
		}
	}
	return &Store{root: root}, nil
}

// Open opens an existing store at root.
func Open(root string) (*Store, error) {
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open store %s: not a directory", root)
	}
	return &Store{root: root}, nil
}

// Root returns the folder of the store.
func (s *Store) Root() string { return s.root }

// Location implements store.Store.
func (s *Store) Location() string { return "local:" + s.root }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

func (s *Store) dir(t store.Type, name string) string {
	if t == store.Config {
		return s.root
	}
	if t == store.Pack && len(name) >= 2 {
		return filepath.Join(s.root, string(t), strings.ToLower(name[:2]))
	}
	return filepath.Join(s.root, string(t))
}

func (s *Store) path(h store.Handle) string { return filepath.Join(s.dir(h.Type, h.Name), h.Name) }

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, h store.Handle, r io.Reader, size int64) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.dir(h.Type, h.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	f, err := os.CreateTemp(dir, tmpPrefix+h.Name+"-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	if size >= 0 && n != size {
		return fmt.Errorf("put %s: wrote %d bytes, expected %d", h, n, size)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: sync: %w", h, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	// Objects are immutable: make that visible to anyone poking around.
	_ = os.Chmod(tmp, 0o400)
	if err := os.Rename(tmp, s.path(h)); err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	ok = true
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) && !isNotSupported(err) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("get %s: negative offset or length", h)
	}
	f, err := os.Open(s.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("get %s: %w", h, store.ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", h, err)
	}
	if offset > 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("get %s: %w", h, err)
		}
	}
	if length > 0 {
		return limitedFile{io.LimitReader(f, length), f}, nil
	}
	return f, nil
}

type limitedFile struct {
	io.Reader
	f *os.File
}

func (l limitedFile) Close() error { return l.f.Close() }

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, h store.Handle) (store.Info, error) {
	if err := h.Valid(); err != nil {
		return store.Info{}, err
	}
	fi, err := os.Stat(s.path(h))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return store.Info{}, fmt.Errorf("stat %s: %w", h, store.ErrNotFound)
		}
		return store.Info{}, fmt.Errorf("stat %s: %w", h, err)
	}
	return store.Info{Handle: h, Size: fi.Size()}, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, t store.Type, fn func(store.Info) error) error {
	if t == store.Config {
		info, err := s.Stat(ctx, store.Handle{Type: store.Config, Name: store.ConfigName})
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(info)
	}
	base := filepath.Join(s.root, string(t))
	dirs := []string{base}
	if t == store.Pack {
		entries, err := os.ReadDir(base)
		if err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		dirs = dirs[:0]
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(base, e.Name()))
			}
		}
	}
	for _, dir := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("list %s: %w", t, err)
		}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), tmpPrefix) {
				continue
			}
			h := store.Handle{Type: t, Name: e.Name()}
			if h.Valid() != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while listing
				}
				return fmt.Errorf("list %s: %w", t, err)
			}
			if err := fn(store.Info{Handle: h, Size: fi.Size()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, h store.Handle) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if err := os.Remove(s.path(h)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", h, store.ErrNotFound)
		}
		return fmt.Errorf("delete %s: %w", h, err)
	}
	return syncDir(s.dir(h.Type, h.Name))
}

// RemoveTemp deletes temporary files left by writes a crash interrupted.
// Only files older than the given age are touched, so that a concurrent
// writer's file in flight survives.
func (s *Store) RemoveTemp(ctx context.Context, olderThan func(fs.FileInfo) bool) (int, error) {
	n := 0
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !olderThan(fi) {
			return nil
		}
		if os.Remove(p) == nil {
			n++
		}
		return nil
	})
	return n, err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

var _ store.FilePutter = (*Store)(nil)

// TempDir implements store.FilePutter.
func (s *Store) TempDir() string {
	d := filepath.Join(s.root, string(store.Pack))
	return d
}

// PutFile implements store.FilePutter: the file, already synced by the
// caller, is renamed into place.
func (s *Store) PutFile(ctx context.Context, h store.Handle, path string) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.dir(h.Type, h.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	_ = os.Chmod(path, 0o400)
	if err := os.Rename(path, s.path(h)); err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	return syncDir(dir)
}
