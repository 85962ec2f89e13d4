// Package mem is a store.Store in memory, for tests and as the reference
// implementation of the store contract.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/cairn-backup/cairn/internal/store"
)

// Store keeps objects in a map.
type Store struct {
	mu   sync.RWMutex
	objs map[store.Handle][]byte
}

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store { return &Store{objs: map[store.Handle][]byte{}} }

// Location implements store.Store.
func (s *Store) Location() string { return "mem:" }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, h store.Handle, r io.Reader, size int64) error {
	if err := h.Valid(); err != nil {
		return err
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	if size >= 0 && int64(len(b)) != size {
		return fmt.Errorf("put %s: got %d bytes, expected %d", h, len(b), size)
	}
	s.mu.Lock()
	s.objs[h] = b
	s.mu.Unlock()
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	b, ok := s.objs[h]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", h, store.ErrNotFound)
	}
	if offset < 0 || length < 0 || offset > int64(len(b)) {
		return nil, fmt.Errorf("get %s: range out of bounds", h)
	}
	b = b[offset:]
	if length > 0 && length < int64(len(b)) {
		b = b[:length]
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, h store.Handle) (store.Info, error) {
	if err := h.Valid(); err != nil {
		return store.Info{}, err
	}
	s.mu.RLock()
	b, ok := s.objs[h]
	s.mu.RUnlock()
	if !ok {
		return store.Info{}, fmt.Errorf("stat %s: %w", h, store.ErrNotFound)
	}
	return store.Info{Handle: h, Size: int64(len(b))}, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, t store.Type, fn func(store.Info) error) error {
	s.mu.RLock()
	var infos []store.Info
	for h, b := range s.objs {
		if h.Type == t {
			infos = append(infos, store.Info{Handle: h, Size: int64(len(b))})
		}
	}
	s.mu.RUnlock()
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, h store.Handle) error {
	if err := h.Valid(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objs[h]; !ok {
		return fmt.Errorf("delete %s: %w", h, store.ErrNotFound)
	}
	delete(s.objs, h)
	return nil
}
