package p2p

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	ccrypto "github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testConfig is a node that only ever touches loopback: 127.0.0.1, no
// mDNS, no port mapping, no relays.
func testConfig(t testing.TB, dir string) Config {
	t.Helper()
	return Config{
		Home:         home.Home{Dir: dir},
		Listen:       []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		NoMDNS:       true,
		NoNATPortMap: true,
		NoRelay:      true,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		ReconnectMin: 200 * time.Millisecond,
		ReconnectMax: 2 * time.Second,
		PingInterval: 500 * time.Millisecond,
	}
}

func startNode(t testing.TB, cfg Config) *Node {
	t.Helper()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestKeyPersistsWithMode0600(t *testing.T) {
	dir := t.TempDir()
	a, err := NodeID(home.Home{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NodeID(home.Home{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("node ID changed: %s then %s", a, b)
	}
	assertMode(t, home.Home{Dir: dir}.NodeKeyPath(), 0o600)
}

func TestPairingAndRestart(t *testing.T) {
	ctx := context.Background()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startNode(t, testConfig(t, dirA))
	b := startNode(t, testConfig(t, dirB))

	code, _, err := a.CreateInvite(0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Join(ctx, code)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if p.ID != a.ID() || p.Trust != TrustFriend {
		t.Fatalf("joiner's row: %+v", p)
	}
	waitFor(t, "inviter records the joiner", func() bool { return a.Peers().Trust(b.ID()) == TrustFriend })

	// One-time: a second use is refused.
	c := startNode(t, testConfig(t, t.TempDir()))
	if _, err := c.Join(ctx, code); !errors.Is(err, ErrInviteRefused) {
		t.Fatalf("reused invite: got %v, want ErrInviteRefused", err)
	}
	if a.Peers().Trust(c.ID()) != TrustUnknown {
		t.Fatal("a reused invite made a friend")
	}

	// Restart A: the table survives and A reconnects to B by itself.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B notices A left", func() bool { return b.Host().Network().Connectedness(a.ID()) != network.Connected })
	cfgA := testConfig(t, dirA)
	a2 := startNode(t, cfgA)
	if a2.ID() != a.ID() {
		t.Fatal("node ID changed across restart")
	}
	if a2.Peers().Trust(b.ID()) != TrustFriend {
		t.Fatal("friend lost across restart")
	}
	// A listens on a new port; B still knows A's old one, but A knows B's.
	waitFor(t, "restarted node reconnects to its friend", func() bool {
		return a2.Host().Network().Connectedness(b.ID()) == network.Connected
	})
	waitFor(t, "RTT measured", func() bool {
		p, _ := a2.Peers().Get(b.ID())
		return p.RTTMillis > 0 && !p.LastSeen.IsZero() && p.LAN
	})
}

func TestInviteExpiryAndWrongSecret(t *testing.T) {
	ctx := context.Background()
	var skew atomic.Int64 // how far the inviter's clock is ahead
	cfg := testConfig(t, t.TempDir())
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	a := startNode(t, cfg)
	b := startNode(t, testConfig(t, t.TempDir()))

	code, _, err := a.CreateInvite(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	skew.Store(int64(2 * time.Minute))
	if _, err := b.Join(ctx, code); !errors.Is(err, ErrInviteRefused) {
		t.Fatalf("expired invite: got %v, want ErrInviteRefused", err)
	}
	skew.Store(0)

	// A forged code with the right inviter but a wrong secret.
	code, _, err = a.CreateInvite(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := DecodeInvite(code)
	if err != nil {
		t.Fatal(err)
	}
	inv.Secret[0] ^= 1
	forged, err := EncodeInvite(a.Host().Peerstore().PubKey(a.ID()), inv.Secret, inv.Addrs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Join(ctx, forged); !errors.Is(err, ErrInviteRefused) {
		t.Fatalf("forged invite: got %v, want ErrInviteRefused", err)
	}
	if a.Peers().Trust(b.ID()) != TrustUnknown {
		t.Fatal("a wrong secret made a friend")
	}
}

func TestBlockedPeerIsRefused(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, testConfig(t, t.TempDir()))
	b := startNode(t, testConfig(t, t.TempDir()))
	if err := a.BlockPeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}, 10*time.Second)
	if err == nil {
		// The dial may complete before the gater's verdict closes it.
		waitFor(t, "blocked connection dropped", func() bool {
			return a.Host().Network().Connectedness(b.ID()) != network.Connected
		})
	}
	if a.Peers().Trust(b.ID()) != TrustBlocked {
		t.Fatal("block not recorded")
	}
}

func TestPairGarbageIsCutOff(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, testConfig(t, t.TempDir()))
	b := startNode(t, testConfig(t, t.TempDir()))
	if _, _, err := a.CreateInvite(0); err != nil {
		t.Fatal(err)
	}
	for _, junk := range [][]byte{
		{0xff, 0xff, 0xff, 0xff, 1, 2, 3},       // claims 4 GiB
		{0, 0, 0, 5, 0xff, 0xfe, 0xfd, 0xfc, 0}, // not CBOR
		{0, 0, 0, 3, 0xa1, 0x01, 0x01},          // a hello without tag or nonce
	} {
		if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		s, err := b.Host().NewStream(ctx, a.ID(), PairProtocol)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := s.Write(junk); err != nil {
			t.Fatal(err)
		}
		_ = s.CloseWrite()
		got, _ := io.ReadAll(io.LimitReader(s, 1<<20))
		if len(got) > maxMessage+4 {
			t.Fatalf("inviter answered garbage with %d bytes", len(got))
		}
		_ = s.Close()
	}
	if a.Peers().Trust(b.ID()) != TrustUnknown {
		t.Fatal("garbage made a friend")
	}
}

func TestPeerTableFile(t *testing.T) {
	dir := t.TempDir()
	h := home.Home{Dir: dir}
	tab, err := OpenPeers(PeersPath(h))
	if err != nil {
		t.Fatal(err)
	}
	id, err := NodeID(home.Home{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tab.Update(id, true, func(p *Peer) { p.Trust = TrustFriend; p.Quota = 5 << 30; p.Name = "mum" }); err != nil {
		t.Fatal(err)
	}
	assertMode(t, PeersPath(h), 0o600)
	tab2, err := OpenPeers(PeersPath(h))
	if err != nil {
		t.Fatal(err)
	}
	if tab2.Trust(id) != TrustFriend {
		t.Fatal("trust lost")
	}
	if q, ok := tab2.QuotaOverride(id); !ok || q != 5<<30 {
		t.Fatalf("quota: %d %v", q, ok)
	}
	other, _ := NodeID(home.Home{Dir: t.TempDir()})
	if tab2.Trust(other) != TrustUnknown {
		t.Fatal("unknown peer trusted")
	}
	tab2.SetCommunity(true)
	if tab2.Trust(other) != TrustCommunity {
		t.Fatal("community mode not applied to unknown peers")
	}
	if _, ok := tab2.QuotaOverride(other); ok {
		t.Fatal("quota for a non-friend")
	}
}

// A node finds, through the DHT of friends, the nodes that provide an
// owner's key: what a recovering node does.
func TestOwnerProviderRecords(t *testing.T) {
	ctx := context.Background()
	var nodes []*Node
	for range 3 {
		cfg := testConfig(t, t.TempDir())
		cfg.ProvideRetry = 200 * time.Millisecond
		nodes = append(nodes, startNode(t, cfg))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	// A–B and B–C are friends; A and C do not know each other.
	for _, pair := range [][2]*Node{{a, b}, {b, c}} {
		code, _, err := pair[0].CreateInvite(0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pair[1].Join(ctx, code); err != nil {
			t.Fatal(err)
		}
	}
	// A short code (no addresses) from A, used by C: found through B's DHT.
	code, _, err := a.CreateShortInvite(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Join(ctx, code); err != nil {
		t.Fatalf("join with a short code through the DHT: %v", err)
	}
	if c.Peers().Trust(a.ID()) != TrustFriend {
		t.Fatal("short code did not make a friend")
	}

	// C in community mode is found by A through B.
	if _, err := c.UpdateSettings(func(s *Settings) error { s.Community = true; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "A finds C as a community member", func() bool {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, ai := range a.FindCommunity(fctx, 5) {
			if ai.ID == c.ID() {
				return true
			}
		}
		return false
	})

	a.ProvideOwner("owner-1")
	waitFor(t, "C finds A as a provider of owner-1", func() bool {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for _, ai := range c.FindOwnerNodes(fctx, "owner-1", 5) {
			if ai.ID == a.ID() {
				return true
			}
		}
		return false
	})
}

// A node without friends has nobody to bootstrap from: no public
// bootstrap peers, ever.
func TestNoPublicBootstrap(t *testing.T) {
	n := startNode(t, testConfig(t, t.TempDir()))
	if bp := n.bootstrapPeers(); len(bp) != 0 {
		t.Fatalf("bootstrap peers without friends: %v", bp)
	}
	time.Sleep(500 * time.Millisecond)
	if got := n.DHT().RoutingTable().Size(); got != 0 {
		t.Fatalf("routing table has %d peers without friends", got)
	}
	if c := len(n.Host().Network().Conns()); c != 0 {
		t.Fatalf("%d connections without friends", c)
	}
}

// Pairing carries the owner's certificate of each node: each side learns
// the other's owner ID from a certificate it verified.
func TestPairingExchangesCertificates(t *testing.T) {
	ctx := context.Background()
	master, err := ccrypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := ccrypto.Derive(master)
	dirA := t.TempDir()
	if err := IssueNodeCert(home.Home{Dir: dirA}, keys); err != nil {
		t.Fatal(err)
	}
	assertMode(t, home.Home{Dir: dirA}.NodeCertPath(), 0o600)
	a := startNode(t, testConfig(t, dirA))
	if got := a.Owner().ID; got != keys.OwnerID() {
		t.Fatalf("owner from certificate: %q, want %q", got, keys.OwnerID())
	}
	b := startNode(t, testConfig(t, t.TempDir()))
	code, _, err := a.CreateInvite(0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.Join(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if p.OwnerID != keys.OwnerID() || len(p.Cert) == 0 {
		t.Fatalf("B's row for A: owner %q, cert %d bytes", p.OwnerID, len(p.Cert))
	}
	c, err := ccrypto.ParseNodeCert(p.Cert)
	if err != nil || c.Verify(a.ID().String(), time.Now()) != nil {
		t.Fatalf("stored certificate does not verify: %v", err)
	}
}

// Strangers learn nothing by the status protocol; friends do.
func TestStatusOnlyForFriends(t *testing.T) {
	ctx := context.Background()
	a := startNode(t, testConfig(t, t.TempDir()))
	b := startNode(t, testConfig(t, t.TempDir()))
	if err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Host().Addrs()}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_ = b.Peers().Update(a.ID(), false, func(p *Peer) {}) // B knows A's row, A does not trust B
	if err := b.RefreshStatus(ctx, a.ID()); err == nil {
		t.Fatal("a stranger got A's status")
	}
	if err := a.Peers().Update(b.ID(), false, func(p *Peer) { p.Trust = TrustFriend }); err != nil {
		t.Fatal(err)
	}
	if err := b.RefreshStatus(ctx, a.ID()); err != nil {
		t.Fatalf("a friend did not get A's status: %v", err)
	}
	if p, _ := b.Peers().Get(a.ID()); p.OfferBytes == 0 && p.FreeBytes == 0 {
		t.Fatalf("status not recorded: %+v", p)
	}
}
