package placement

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
)

// fakeHost is an in-memory Host. It verifies hashes at put like a real
// host, and can be switched offline, slow (every call waits for its
// context), or lying (it flips a byte of what it serves).
type fakeHost struct {
	id string

	mu      sync.Mutex
	objs    map[store.Handle]*fakeObj
	offline bool
	slow    bool
	lying   bool
	bytesIn int64
	puts    int
}

type fakeObj struct {
	data  []byte
	sum   [32]byte
	until time.Time
}

var errOffline = errors.New("host offline")

func newFakeHost(id string) *fakeHost {
	return &fakeHost{id: id, objs: map[store.Handle]*fakeObj{}}
}

func (f *fakeHost) ID() string { return f.id }

func (f *fakeHost) enter(ctx context.Context) error {
	f.mu.Lock()
	off, slow := f.offline, f.slow
	f.mu.Unlock()
	if off {
		return errOffline
	}
	if slow {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeHost) set(fn func(f *fakeHost)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// corrupt flips one byte of every stored object matching match.
func (f *fakeHost) corrupt(match func(store.Handle) bool) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for h, o := range f.objs {
		if match(h) && len(o.data) > 0 {
			o.data[len(o.data)/2] ^= 0x40
			n++
		}
	}
	return n
}

func (f *fakeHost) handles(t store.Type) []store.Handle {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Handle
	for h := range f.objs {
		if t == "" || h.Type == t {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].String() < out[b].String() })
	return out
}

func (f *fakeHost) Put(ctx context.Context, h store.Handle, size int64, sum [32]byte, until time.Time, r io.Reader) error {
	if err := f.enter(ctx); err != nil {
		return err
	}
	if err := h.Valid(); err != nil {
		return err
	}
	f.mu.Lock()
	if o := f.objs[h]; o != nil && o.sum == sum {
		if until.After(o.until) {
			o.until = until
		}
		f.mu.Unlock()
		return nil // the host has these bytes: the body is not sent
	}
	f.mu.Unlock()
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return err
	}
	if int64(len(data)) != size || sha256.Sum256(data) != sum {
		return wire.ErrHashMismatch
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs[h] = &fakeObj{data: data, sum: sum, until: until}
	f.bytesIn += size
	f.puts++
	return nil
}

func (f *fakeHost) Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[h]
	if o == nil {
		return nil, fmt.Errorf("%s: %w", h, store.ErrNotFound)
	}
	end := int64(len(o.data))
	if length > 0 {
		end = min(end, offset+length)
	}
	b := bytes.Clone(o.data[offset:end])
	if f.lying && len(b) > 0 {
		b[0] ^= 1
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (f *fakeHost) Has(ctx context.Context, hs []store.Handle) ([]Entry, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Entry
	for _, h := range hs {
		if o := f.objs[h]; o != nil {
			out = append(out, Entry{Handle: h, Size: int64(len(o.data)), SHA256: o.sum, Until: o.until})
		}
	}
	return out, nil
}

func (f *fakeHost) List(ctx context.Context, t store.Type, fn func(Entry) error) error {
	if err := f.enter(ctx); err != nil {
		return err
	}
	for _, h := range f.handles(t) {
		f.mu.Lock()
		o := f.objs[h]
		e := Entry{Handle: h, Size: int64(len(o.data)), SHA256: o.sum, Until: o.until}
		f.mu.Unlock()
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeHost) Renew(ctx context.Context, hs []store.Handle, until time.Time) ([]store.Handle, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var missing []store.Handle
	for _, h := range hs {
		if o := f.objs[h]; o != nil {
			if until.After(o.until) {
				o.until = until
			}
		} else {
			missing = append(missing, h)
		}
	}
	return missing, nil
}

func (f *fakeHost) Delete(ctx context.Context, hs []store.Handle) error {
	if err := f.enter(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range hs {
		delete(f.objs, h)
	}
	return nil
}

func (f *fakeHost) Audit(ctx context.Context, h store.Handle, leaves []uint64) ([]LeafProof, error) {
	if err := f.enter(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	o := f.objs[h]
	var data []byte
	if o != nil {
		data = bytes.Clone(o.data)
	}
	f.mu.Unlock()
	if o == nil {
		return nil, fmt.Errorf("%s: %w", h, store.ErrNotFound)
	}
	m := wire.NewMerkleHasher()
	m.Write(data)
	paths, err := m.Paths(leaves)
	if err != nil {
		return nil, err
	}
	out := make([]LeafProof, len(leaves))
	for i, l := range leaves {
		start := int64(l) * wire.LeafSize
		end := start + int64(wire.LeafLen(int64(len(data)), l))
		out[i] = LeafProof{Index: l, Data: data[start:end], Path: paths[i]}
	}
	return out, nil
}

var _ Host = (*fakeHost)(nil)

// memRepo is an in-memory local repository (store.Reader).
type memRepo struct {
	mu   sync.Mutex
	objs map[store.Handle][]byte
}

func newMemRepo() *memRepo { return &memRepo{objs: map[store.Handle][]byte{}} }

func (m *memRepo) add(h store.Handle, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[h] = b
}

func (m *memRepo) remove(h store.Handle) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, h)
}

func (m *memRepo) Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[h]
	if !ok {
		return nil, fmt.Errorf("%s: %w", h, store.ErrNotFound)
	}
	end := int64(len(b))
	if length > 0 {
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(b[offset:end])), nil
}

func (m *memRepo) Stat(ctx context.Context, h store.Handle) (store.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[h]
	if !ok {
		return store.Info{}, fmt.Errorf("%s: %w", h, store.ErrNotFound)
	}
	return store.Info{Handle: h, Size: int64(len(b))}, nil
}

func (m *memRepo) List(ctx context.Context, t store.Type, fn func(store.Info) error) error {
	m.mu.Lock()
	var infos []store.Info
	for h, b := range m.objs {
		if h.Type == t {
			infos = append(infos, store.Info{Handle: h, Size: int64(len(b))})
		}
	}
	m.mu.Unlock()
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is one owner with a local repository, hosts and an engine.
type env struct {
	t     testing.TB
	ctx   context.Context
	dir   string
	clock *fakeClock
	repo  *memRepo
	hosts []*fakeHost
	e     *Engine
	rnd   *rand.Rand
	// baseTimeout bounds each transfer (2 s unless a test wants less).
	baseTimeout time.Duration
}

func newEnv(t testing.TB, nHosts int, red Redundancy) *env {
	t.Helper()
	v := &env{t: t, ctx: context.Background(), dir: t.TempDir(), clock: &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		repo: newMemRepo(), rnd: rand.New(rand.NewPCG(1, 2)), baseTimeout: 2 * time.Second}
	for i := 0; i < nHosts; i++ {
		v.hosts = append(v.hosts, newFakeHost(fmt.Sprintf("host%02d", i)))
	}
	v.e = v.open("placement.db", red)
	return v
}

func (v *env) open(name string, red Redundancy) *Engine {
	v.t.Helper()
	e, err := Open(v.ctx, Options{
		Path: filepath.Join(v.dir, name), Redundancy: red, Now: v.clock.Now,
		Rand: rand.New(rand.NewPCG(3, 4)), HedgeAfter: 20 * time.Millisecond,
		BaseTimeout: v.baseTimeout, MinRate: 1 << 40, Logger: discardLogger(),
	})
	if err != nil {
		v.t.Fatal(err)
	}
	v.t.Cleanup(func() { e.Close() })
	return e
}

// cands returns the candidates: every host, online unless switched off.
func (v *env) cands() []Candidate {
	var out []Candidate
	for i, h := range v.hosts {
		h.mu.Lock()
		online := !h.offline
		h.mu.Unlock()
		trust := TrustFriend
		if i%2 == 1 {
			trust = TrustCommunity
		}
		out = append(out, Candidate{Host: h, Info: HostInfo{Trust: trust, Online: online, RTT: time.Duration(i+1) * time.Millisecond}})
	}
	return out
}

// addPack adds a random pack of size bytes to the local repository.
func (v *env) addPack(size int) store.Handle {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(v.rnd.Uint32())
	}
	s := sha256.Sum256(b)
	h := store.Handle{Type: store.Pack, Name: fmt.Sprintf("%x", s)}
	v.repo.add(h, b)
	return h
}

func (v *env) addMeta(t store.Type, b []byte) store.Handle {
	s := sha256.Sum256(b)
	h := store.Handle{Type: t, Name: fmt.Sprintf("%x", s)}
	if t == store.Config {
		h.Name = store.ConfigName
	}
	v.repo.add(h, b)
	return h
}

// populate adds a config, a key, an index, a snapshot and n packs.
func (v *env) populate(n, size int) []store.Handle {
	v.addMeta(store.Config, []byte("config bytes"))
	v.addMeta(store.Key, []byte("key file"))
	v.addMeta(store.Index, []byte("index bytes"))
	v.addMeta(store.Snapshot, []byte("snapshot bytes"))
	var packs []store.Handle
	for i := 0; i < n; i++ {
		packs = append(packs, v.addPack(size+i))
	}
	return packs
}

func (v *env) sync(so SyncOptions) Summary {
	v.t.Helper()
	s, err := v.e.Sync(v.ctx, v.repo, v.cands(), so)
	if err != nil {
		v.t.Fatal(err)
	}
	return s
}

// holders returns, for each pack, the hosts holding any piece of it.
func (v *env) holders(pack store.Handle) map[string][]store.Handle {
	out := map[string][]store.Handle{}
	for _, h := range v.hosts {
		for _, oh := range h.handles(store.Pack) {
			if oh.Name == pack.Name || (len(oh.Name) > 64 && oh.Name[:64] == pack.Name) {
				out[h.id] = append(out[h.id], oh)
			}
		}
	}
	return out
}

// checkRestore reads every object of the local repository through a
// Store over the hosts and compares.
func (v *env) checkRestore(e *Engine) {
	v.t.Helper()
	s := NewStore(e, v.cands, StoreOptions{})
	v.repo.mu.Lock()
	want := map[store.Handle][]byte{}
	for h, b := range v.repo.objs {
		want[h] = b
	}
	v.repo.mu.Unlock()
	for h, b := range want {
		got, err := store.ReadAll(v.ctx, s, h)
		if err != nil {
			v.t.Fatalf("restore %s: %v", h, err)
		}
		if !bytes.Equal(got, b) {
			v.t.Fatalf("restore %s: bytes differ", h)
		}
	}
}
