package hosting

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/cairn-backup/cairn/internal/store"
)

// files keeps object bytes under dir:
//
//	objects/<owner id>/<type>/<name>   committed objects
//	tmp/                               uploads in progress; emptied at start
//
// Owner IDs are 64 hex characters and handles pass store.Handle.Valid, so
// no path is ever built from unchecked bytes.
type files struct {
	dir string
}

func (f files) objectsDir() string { return filepath.Join(f.dir, "objects") }
func (f files) tmpDir() string     { return filepath.Join(f.dir, "tmp") }

func (f files) path(owner string, h store.Handle) string {
	return filepath.Join(f.objectsDir(), owner, string(h.Type), h.Name)
}

func (f files) init() error {
	for _, d := range []string{f.objectsDir(), f.tmpDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	return nil
}

// clearTmp removes every leftover upload: nothing is in progress yet.
func (f files) clearTmp() (int, error) {
	ents, err := os.ReadDir(f.tmpDir())
	if err != nil {
		return 0, fmt.Errorf("clear %s: %w", f.tmpDir(), err)
	}
	n := 0
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(f.tmpDir(), e.Name())); err != nil {
			return n, fmt.Errorf("clear %s: %w", f.tmpDir(), err)
		}
		n++
	}
	return n, nil
}

// walk calls fn for every committed object file.
func (f files) walk(fn func(owner string, h store.Handle, path string) error) error {
	root := f.objectsDir()
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if len(parts) != 3 {
			return fn("", store.Handle{}, p)
		}
		return fn(parts[0], store.Handle{Type: store.Type(parts[1]), Name: parts[2]}, p)
	})
}

// upload is a file being received: bytes go to a temporary file and a hash.
type upload struct {
	f    *os.File
	sum  hash.Hash
	done bool
	werr error // the first write error, if any
}

func (f files) newUpload() (*upload, error) {
	tf, err := os.CreateTemp(f.tmpDir(), "put-*")
	if err != nil {
		return nil, fmt.Errorf("create upload file: %w", err)
	}
	return &upload{f: tf, sum: sha256.New()}, nil
}

func (u *upload) Write(p []byte) (int, error) {
	n, err := u.f.Write(p)
	u.sum.Write(p[:n])
	if err != nil && u.werr == nil {
		u.werr = err
	}
	return n, err
}

// abort removes the temporary file. Safe to call after commit.
func (u *upload) abort() {
	if u.done {
		return
	}
	u.done = true
	u.f.Close()
	os.Remove(u.f.Name())
}

// commit syncs the file and renames it into place, then syncs the folder.
func (f files) commit(u *upload, owner string, h store.Handle) error {
	if err := u.f.Sync(); err != nil {
		u.abort()
		return fmt.Errorf("sync upload of %s: %w", h, err)
	}
	if err := u.f.Close(); err != nil {
		u.abort()
		return fmt.Errorf("close upload of %s: %w", h, err)
	}
	dst := f.path(owner, h)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		u.abort()
		return fmt.Errorf("store %s: %w", h, err)
	}
	if err := os.Rename(u.f.Name(), dst); err != nil {
		u.abort()
		return fmt.Errorf("store %s: %w", h, err)
	}
	u.done = true
	syncDir(dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not every platform supports it
		d.Close()
	}
}

func (f files) open(owner string, h store.Handle) (*os.File, error) {
	fh, err := os.Open(f.path(owner, h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", h, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", h, err)
	}
	return fh, nil
}

func (f files) remove(owner string, h store.Handle) error {
	err := os.Remove(f.path(owner, h))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", h, err)
	}
	return nil
}

var _ io.Writer = (*upload)(nil)
