// Package tiered puts a fast local store in front of a remote one: reads
// come from the local store and fall back to the remote one for objects the
// machine does not keep (after a recovery, or with --no-local); writes and
// deletes go where the caller's policy says.
package tiered

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cairn-backup/cairn/internal/store"
)

// Store reads local first, then remote.
type Store struct {
	local store.Store
	// remote is opened on first need, so commands that find everything
	// locally never start the network.
	openRemote func(ctx context.Context) (store.Store, error)
	// WriteLocal sends writes to the local store (the default); otherwise
	// writes go to the remote store only, except small metadata objects,
	// which are always kept locally too.
	writeLocal bool

	mu     sync.Mutex
	remote store.Store
	err    error
}

var _ store.Store = (*Store)(nil)

// New returns a tiered store.
func New(local store.Store, openRemote func(ctx context.Context) (store.Store, error), writeLocal bool) *Store {
	return &Store{local: local, openRemote: openRemote, writeLocal: writeLocal}
}

func (s *Store) getRemote(ctx context.Context) (store.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remote == nil && s.err == nil {
		s.remote, s.err = s.openRemote(ctx)
	}
	return s.remote, s.err
}

// Local returns the local store.
func (s *Store) Local() store.Store { return s.local }

// Location implements store.Store.
func (s *Store) Location() string { return s.local.Location() + "+peers" }

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.remote != nil {
		err = s.remote.Close()
	}
	return errors.Join(err, s.local.Close())
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.local.Get(ctx, h, offset, length)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return rc, err
	}
	r, rerr := s.getRemote(ctx)
	if rerr != nil {
		return nil, fmt.Errorf("%w (and peers unavailable: %v)", err, rerr)
	}
	return r.Get(ctx, h, offset, length)
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, h store.Handle) (store.Info, error) {
	i, err := s.local.Stat(ctx, h)
	if err == nil || !errors.Is(err, store.ErrNotFound) {
		return i, err
	}
	r, rerr := s.getRemote(ctx)
	if rerr != nil {
		return i, err
	}
	return r.Stat(ctx, h)
}

// List implements store.Store. Metadata is always kept locally, so its
// local listing is complete and needs no network. Packs may live on peers
// only (after a recovery, or without local writes): their listing is the
// union of both, each once. When the peers cannot be reached, a store
// that writes locally lists what it has.
func (s *Store) List(ctx context.Context, t store.Type, fn func(store.Info) error) error {
	seen := map[string]bool{}
	err := s.local.List(ctx, t, func(i store.Info) error {
		seen[i.Handle.Name] = true
		return fn(i)
	})
	if err != nil || t == store.Lock || (s.writeLocal && t != store.Pack) {
		return err
	}
	r, err := s.getRemote(ctx)
	if err != nil {
		if s.writeLocal {
			return nil
		}
		return err
	}
	return r.List(ctx, t, func(i store.Info) error {
		if seen[i.Handle.Name] {
			return nil
		}
		return fn(i)
	})
}

func isMetadata(t store.Type) bool { return t != store.Pack }

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, h store.Handle, rd io.Reader, size int64) error {
	if s.writeLocal || isMetadata(h.Type) {
		return s.local.Put(ctx, h, rd, size)
	}
	r, err := s.getRemote(ctx)
	if err != nil {
		return fmt.Errorf("put %s: peers unavailable: %w", h, err)
	}
	return r.Put(ctx, h, rd, size)
}

// Delete implements store.Store: both copies go. The object is gone once
// neither store has it; a missing copy on one side is not an error, a
// failure on either side is.
func (s *Store) Delete(ctx context.Context, h store.Handle) error {
	lerr := s.local.Delete(ctx, h)
	if h.Type == store.Lock {
		return lerr
	}
	r, err := s.getRemote(ctx)
	if err != nil {
		if lerr == nil {
			return fmt.Errorf("delete %s on peers: %w", h, err)
		}
		return lerr
	}
	rerr := r.Delete(ctx, h)
	lgone, rgone := errors.Is(lerr, store.ErrNotFound), errors.Is(rerr, store.ErrNotFound)
	switch {
	case lerr != nil && !lgone:
		return lerr
	case rerr != nil && !rgone:
		return rerr
	case lgone && rgone:
		return lerr // it was nowhere
	}
	return nil
}
