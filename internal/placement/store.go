package placement

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/cairn-backup/cairn/internal/store"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	// Redundancy of packs put through the store (zero: the engine's).
	Redundancy Redundancy
	// CacheBytes bounds the verified objects kept in memory for ranged
	// reads (default 64 MiB; at least one object is always kept).
	CacheBytes int64
	// Fetches bounds the objects fetched from hosts at once, hence the
	// memory reads take: about 2.7 × 16 MiB each for a 3+2 pack (4).
	Fetches int
}

// Store is the hosts seen as a store.Store. Reads fetch whole objects
// from the fastest hosts (any K shards), verify every byte against the
// object's SHA-256 and keep a few in memory for the ranged reads that
// follow. Put places at once (for an owner without a local repository),
// Delete deletes on every host. When the placement record is empty (a
// recovery), the first call rebuilds it from the hosts' listings.
type Store struct {
	e     *Engine
	hosts func() []Candidate
	opts  StoreOptions

	rebuildMu sync.Mutex
	rebuilt   bool

	cacheMu sync.Mutex
	cache   []cached // most recent last
	loading map[store.Handle]*load
	fetches chan struct{}
}

type cached struct {
	h    store.Handle
	data []byte
}

type load struct {
	done chan struct{}
	data []byte
	err  error
}

var _ store.Store = (*Store)(nil)

// NewStore returns a store over the hosts that hosts returns at each call
// (the peer table's current view).
func NewStore(e *Engine, hosts func() []Candidate, opts StoreOptions) *Store {
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.Fetches <= 0 {
		opts.Fetches = 4
	}
	return &Store{e: e, hosts: hosts, opts: opts, loading: map[store.Handle]*load{}, fetches: make(chan struct{}, opts.Fetches)}
}

// Location describes the store.
func (s *Store) Location() string { return "peers" }

// Close releases nothing; the engine is closed by its owner.
func (s *Store) Close() error { return nil }

func (s *Store) ensure(ctx context.Context) error {
	s.rebuildMu.Lock()
	defer s.rebuildMu.Unlock()
	if s.rebuilt || !s.e.Empty() {
		return nil
	}
	if _, err := s.e.Rebuild(ctx, s.hosts()); err != nil {
		return err
	}
	s.rebuilt = true
	return nil
}

func (s *Store) lookup(ctx context.Context, h store.Handle) (*object, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	if err := s.ensure(ctx); err != nil {
		return nil, fmt.Errorf("rebuild placement record: %w", err)
	}
	s.e.mu.Lock()
	o := s.e.objs[h]
	s.e.mu.Unlock()
	if o == nil {
		// A host that was offline during the rebuild may hold it.
		if err := s.e.adoptUnlisted(ctx, s.hosts()); err != nil {
			return nil, fmt.Errorf("rebuild placement record: %w", err)
		}
		s.e.mu.Lock()
		o = s.e.objs[h]
		s.e.mu.Unlock()
	}
	if o == nil || o.forgotten {
		return nil, fmt.Errorf("%s on peers: %w", h, store.ErrNotFound)
	}
	return o, nil
}

// Get reads from the hosts; see Store.
func (s *Store) Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	o, err := s.lookup(ctx, h)
	if err != nil {
		return nil, err
	}
	data, err := s.object(ctx, o)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 || offset > int64(len(data)) {
		return nil, fmt.Errorf("get %s: range %d+%d of %d bytes", h, offset, length, len(data))
	}
	end := int64(len(data))
	if length > 0 {
		if offset+length > end {
			return nil, fmt.Errorf("get %s: range %d+%d of %d bytes: %w", h, offset, length, len(data), io.ErrUnexpectedEOF)
		}
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(data[offset:end])), nil
}

// object returns the verified bytes of o, from the cache or the hosts;
// concurrent readers of one object share one fetch.
func (s *Store) object(ctx context.Context, o *object) ([]byte, error) {
	s.cacheMu.Lock()
	for i, c := range s.cache {
		if c.h == o.h {
			s.cache = append(append(s.cache[:i:i], s.cache[i+1:]...), c)
			s.cacheMu.Unlock()
			return c.data, nil
		}
	}
	if l := s.loading[o.h]; l != nil {
		s.cacheMu.Unlock()
		select {
		case <-l.done:
			return l.data, l.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	l := &load{done: make(chan struct{})}
	s.loading[o.h] = l
	s.cacheMu.Unlock()

	// Not ErrNotFound when the hosts are out of reach: the object exists,
	// it is only unavailable now (ErrUnrecoverable).
	select {
	case s.fetches <- struct{}{}:
		l.data, l.err = s.e.fetchObject(ctx, o, s.hosts())
		<-s.fetches
	case <-ctx.Done():
		l.err = ctx.Err()
	}
	s.cacheMu.Lock()
	delete(s.loading, o.h)
	if l.err == nil {
		s.cache = append(s.cache, cached{o.h, l.data})
		var total int64
		for _, c := range s.cache {
			total += int64(len(c.data))
		}
		for len(s.cache) > 1 && total > s.opts.CacheBytes {
			total -= int64(len(s.cache[0].data))
			s.cache = s.cache[1:]
		}
	}
	s.cacheMu.Unlock()
	close(l.done)
	return l.data, l.err
}

func (s *Store) drop(h store.Handle) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	for i, c := range s.cache {
		if c.h == h {
			s.cache = append(s.cache[:i:i], s.cache[i+1:]...)
			return
		}
	}
}

// Stat returns the object's size from the record (an erasure-coded pack
// found by a rebuild asks one shard's header once).
func (s *Store) Stat(ctx context.Context, h store.Handle) (store.Info, error) {
	o, err := s.lookup(ctx, h)
	if err != nil {
		return store.Info{}, err
	}
	size, err := s.e.resolveSize(ctx, o, s.hosts())
	if err != nil {
		return store.Info{}, err
	}
	return store.Info{Handle: h, Size: size}, nil
}

// List lists the objects of type t the record knows.
func (s *Store) List(ctx context.Context, t store.Type, fn func(store.Info) error) error {
	if err := s.ensure(ctx); err != nil {
		return fmt.Errorf("rebuild placement record: %w", err)
	}
	s.e.mu.Lock()
	var objs []*object
	for h, o := range s.e.objs {
		if h.Type == t && !o.forgotten {
			objs = append(objs, o)
		}
	}
	s.e.mu.Unlock()
	for _, o := range objs {
		size, err := s.e.resolveSize(ctx, o, s.hosts())
		if err != nil {
			return fmt.Errorf("list %s: %w", t, err)
		}
		if err := fn(store.Info{Handle: o.h, Size: size}); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// Put places the object on the hosts now: metadata and locks on every
// online host, packs with the store's redundancy. It succeeds once the
// object can be read back from the hosts (at least one copy, or K
// shards); what is missing beyond that is recorded and completed by later
// Sync or Repair calls.
func (s *Store) Put(ctx context.Context, h store.Handle, r io.Reader, size int64) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if size < 0 || size > 1<<36 {
		return fmt.Errorf("put %s: bad size %d", h, size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(r, data); err != nil {
		return fmt.Errorf("put %s: read %d bytes: %w", h, size, err)
	}
	if id, ok := contentID(h); ok && id != sum256(data) {
		return fmt.Errorf("put %s: %w", h, ErrCorrupt)
	}
	red := Redundancy{}
	if h.Type == store.Pack {
		red = s.opts.Redundancy
	}
	s.drop(h)
	return s.e.PutObject(ctx, h, data, red, s.hosts())
}

// Delete deletes the object on every host (now on the online ones, the
// others when they return).
func (s *Store) Delete(ctx context.Context, h store.Handle) error {
	if _, err := s.lookup(ctx, h); err != nil {
		return err
	}
	s.drop(h)
	_, err := s.e.Forget(ctx, s.hosts(), []store.Handle{h})
	return err
}

// PutObject places one object from its bytes: a pack (red: its
// redundancy; zero: the engine's) or metadata (every host). It returns an
// error wrapping ErrTooFewHosts unless the object can be read back from
// the hosts afterwards.
func (e *Engine) PutObject(ctx context.Context, h store.Handle, data []byte, red Redundancy, hosts []Candidate) error {
	if h.Type == store.Pack {
		if red == (Redundancy{}) {
			red = e.opts.Redundancy
		}
		if red == (Redundancy{}) {
			n := 0
			for _, c := range hosts {
				if c.Info.Trust != TrustBlocked {
					n++
				}
			}
			red = DefaultRedundancy(n)
		}
		if err := red.Validate(); err != nil {
			return fmt.Errorf("put %s: %w", h, err)
		}
	} else {
		red = Redundancy{}
	}
	st := &syncState{}
	e.mu.Lock()
	if err := e.seenLocked(ctx, hosts); err != nil {
		e.mu.Unlock()
		return err
	}
	o := e.objs[h]
	sum := sum256(data)
	switch {
	case o == nil:
		o = &object{h: h, size: int64(len(data)), red: red, created: e.now()}
		e.objs[h] = o
	case o.forgotten:
		o.forgotten = false
	}
	if o.meta() && (!o.shaKnown || o.sha != sum) {
		o.sha, o.shaKnown, o.size = sum, true, int64(len(data))
		if err := e.rewriteMetaLocked(ctx, o, data); err != nil {
			e.mu.Unlock()
			return err
		}
	}
	if err := e.db.saveObject(ctx, o); err != nil {
		e.mu.Unlock()
		return fmt.Errorf("record %s: %w", h, err)
	}
	e.mu.Unlock()
	if err := e.fill(ctx, nil, data, o, hosts, st); err != nil {
		return fmt.Errorf("put %s: %w", h, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	online := onlineSet(hosts)
	if o.meta() {
		if len(o.pieces) == 0 || o.pieces[0] == nil || e.healthyLocked(o.pieces[0], online) == 0 {
			return fmt.Errorf("put %s: no host took it (%s): %w", h, st.sum.LastError, ErrTooFewHosts)
		}
		return nil
	}
	if e.stateOfLocked(o, online) == 2 {
		return fmt.Errorf("put %s: too few hosts took pieces (%s): %w", h, st.sum.LastError, ErrTooFewHosts)
	}
	return nil
}
