package hosting_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/hosting"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// newHost starts a libp2p host on loopback only: no mDNS, no port
// mapping, no relay, no bootstrap. transport is "tcp", "quic" or "" for both.
func newHost(t testing.TB, transport string) host.Host {
	t.Helper()
	var addrs []string
	if transport != "quic" {
		addrs = append(addrs, "/ip4/127.0.0.1/tcp/0")
	}
	if transport != "tcp" {
		addrs = append(addrs, "/ip4/127.0.0.1/udp/0/quic-v1")
	}
	h, err := libp2p.New(libp2p.ListenAddrStrings(addrs...), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connect(t testing.TB, from, to host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

// clock is a settable clock for leases.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// policy is a settable peer policy; peers not listed get def.
type policy struct {
	mu     sync.Mutex
	def    hosting.Trust
	trust  map[peer.ID]hosting.Trust
	quotas map[peer.ID]int64
}

func newPolicy(def hosting.Trust) *policy {
	return &policy{def: def, trust: map[peer.ID]hosting.Trust{}, quotas: map[peer.ID]int64{}}
}

func (p *policy) Trust(n peer.ID) hosting.Trust {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.trust[n]; ok {
		return t
	}
	return p.def
}

func (p *policy) QuotaOverride(n peer.ID) (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ok := p.quotas[n]
	return q, ok
}

func (p *policy) setDefault(t hosting.Trust) {
	p.mu.Lock()
	p.def = t
	p.mu.Unlock()
}

func (p *policy) set(n peer.ID, t hosting.Trust) {
	p.mu.Lock()
	p.trust[n] = t
	p.mu.Unlock()
}

func (p *policy) setQuota(n peer.ID, q int64) {
	p.mu.Lock()
	p.quotas[n] = q
	p.mu.Unlock()
}

type testHost struct {
	h      host.Host
	srv    *hosting.Server
	dir    string
	clock  *clock
	policy *policy
}

type hostOpt func(*hosting.Config)

func generous() hosting.Settings {
	return hosting.Settings{OfferBytes: 1 << 30, FreeAllowance: 1 << 30, Ratio: 1, MaxLease: 365 * 24 * time.Hour}
}

// startHost runs a hosting server whose peers are all friends unless the
// test's policy says otherwise.
func startHost(t testing.TB, transport string, opts ...hostOpt) *testHost {
	t.Helper()
	th := &testHost{h: newHost(t, transport), dir: t.TempDir(), clock: newClock(), policy: newPolicy(hosting.TrustFriend)}
	cfg := hosting.Config{
		Dir: th.dir, Settings: generous(), Policy: th.policy, Now: th.clock.Now,
		Logger: testLogger(t),
	}
	for _, o := range opts {
		o(&cfg)
	}
	th.start(t, cfg)
	return th
}

func (th *testHost) start(t testing.TB, cfg hosting.Config) {
	t.Helper()
	srv, err := hosting.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(th.h)
	th.srv = srv
	t.Cleanup(func() { srv.Close() })
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type owner struct {
	keys   *crypto.Keys
	h      host.Host
	client *hostclient.Client
}

func newOwner(t testing.TB, transport string, hosts ...*testHost) *owner {
	t.Helper()
	mk, err := crypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	o := &owner{keys: crypto.Derive(mk), h: newHost(t, transport)}
	o.client = hostclient.New(o.h, hostclient.OwnerSigner(o.keys), hostclient.Options{})
	for _, th := range hosts {
		connect(t, o.h, th.h)
	}
	return o
}

func pack(data []byte) store.Handle {
	return store.Handle{Type: store.Pack, Name: crypto.Hash(data).String()}
}

func (th *testHost) until() time.Time { return th.clock.Now().Add(30 * 24 * time.Hour) }

func (o *owner) put(t testing.TB, th *testHost, h store.Handle, data []byte) hostclient.PutResult {
	t.Helper()
	res, err := o.tryPut(th, h, data)
	if err != nil {
		t.Fatalf("put %s: %v", h, err)
	}
	return res
}

func (o *owner) tryPut(th *testHost, h store.Handle, data []byte) (hostclient.PutResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	obj := hostclient.Object{Handle: h, Size: int64(len(data)), Hash: sha256.Sum256(data), Until: th.until()}
	return o.client.Put(ctx, th.h.ID(), obj, bytes.NewReader(data))
}

func (o *owner) get(th *testHost, h store.Handle, off, n int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rc, err := o.client.Get(ctx, th.h.ID(), h, off, n)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return b, err
}

// files lists every regular file under dir/sub, relative.
func files(t testing.TB, dir, sub string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dir, sub)
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

// waitFor polls cond until it holds or a generous bound passes. It waits
// for an event; it asserts nothing about how long the event takes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
