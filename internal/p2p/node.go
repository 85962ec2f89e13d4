// Package p2p is cairn's node on the peer network: a go-libp2p host (TCP
// and QUIC, Noise and TLS, yamux) with a persistent Ed25519 key, the peer
// table, discovery (mDNS, friends' last known addresses, a Kademlia DHT in
// cairn's own namespace), NAT traversal (AutoNAT, hole punching, circuit
// relay v2 through friends), and pairing by invite code.
//
// The node never contacts the bootstrap peers of other networks: its DHT
// is seeded only from the peer table. See docs/network.md.
package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-backup/cairn/internal/home"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// Protocol IDs of cairn's node protocols.
const (
	PairProtocol   = "/cairn/pair/1"
	StatusProtocol = "/cairn/status/1"
	DHTPrefix      = "/cairn"
	MDNSService    = "_cairn._udp"
)

// DefaultListen are the listen addresses when none are configured.
var DefaultListen = []string{
	"/ip4/0.0.0.0/tcp/4521",
	"/ip4/0.0.0.0/udp/4521/quic-v1",
	"/ip6/::/tcp/4521",
	"/ip6/::/udp/4521/quic-v1",
}

// Config configures a node. The zero value of each switch is the product's
// default (everything on); tests turn mDNS, port mapping and relays off.
type Config struct {
	Home home.Home
	// Listen are multiaddrs to listen on; empty means the settings' ones,
	// else DefaultListen (with a random port if 4521 is taken). The
	// switches below are or-ed with the settings' ones.
	Listen []string
	// NoMDNS turns LAN discovery off.
	NoMDNS bool
	// NoNATPortMap turns UPnP / NAT-PMP port mapping off.
	NoNATPortMap bool
	// NoRelay turns circuit relay (client and service) and hole punching off.
	NoRelay bool
	// Reachability skips AutoNAT's verdict: "public" for a node known to
	// be reachable from the internet (a server: it then relays for its
	// friends), "private" for one known not to be; "" lets AutoNAT decide.
	Reachability string
	// Name is what the node calls itself to peers; default the host name.
	Name string
	// Logger receives the node's logs; default slog.Default().
	Logger *slog.Logger
	// ReconnectMin and ReconnectMax bound the backoff between attempts to
	// reach a friend (defaults 5 s and 10 min).
	ReconnectMin, ReconnectMax time.Duration
	// PingInterval is how often connected peers' RTT is measured (1 min).
	PingInterval time.Duration
	// ProvideRetry is how often the node checks whether provider records
	// are due (default 30 s); records themselves are refreshed every 12 h.
	ProvideRetry time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Node is a running cairn node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	host     host.Host
	dht      *dht.IpfsDHT
	peers    *Peers
	invites  *invites
	gater    *gater
	mdns     mdns.Service
	settings struct {
		sync.Mutex
		s Settings
	}
	provide struct {
		sync.Mutex
		owners map[string]bool
	}
	kick chan struct{} // wakes the reconnect loop
	// started holds the host once libp2p.New returned, for callbacks that
	// libp2p may run while it is still being built (AutoRelay's).
	started atomic.Pointer[host.Host]
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// New starts a node for the home in cfg. Close stops it.
func New(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 5 * time.Second
	}
	if cfg.ReconnectMax <= 0 {
		cfg.ReconnectMax = 10 * time.Minute
	}
	if cfg.ProvideRetry <= 0 {
		cfg.ProvideRetry = 30 * time.Second
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = time.Minute
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
		if len(cfg.Name) > 64 {
			cfg.Name = cfg.Name[:64]
		}
	}
	if err := cfg.Home.Ensure(); err != nil {
		return nil, err
	}
	key, err := LoadOrCreateKey(cfg.Home.NodeKeyPath())
	if err != nil {
		return nil, err
	}
	settings, err := LoadSettings(cfg.Home)
	if err != nil {
		return nil, err
	}
	peers, err := OpenPeers(PeersPath(cfg.Home))
	if err != nil {
		return nil, err
	}
	peers.SetCommunity(settings.Community)
	if len(cfg.Listen) == 0 {
		cfg.Listen = settings.Listen
	}
	cfg.NoMDNS = cfg.NoMDNS || settings.NoMDNS
	cfg.NoNATPortMap = cfg.NoNATPortMap || settings.NoNATPortMap
	cfg.NoRelay = cfg.NoRelay || settings.NoRelay

	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger,
		peers:   peers,
		invites: newInvites(cfg.Now),
		gater:   &gater{peers: peers},
		kick:    make(chan struct{}, 1),
	}
	n.settings.s = settings
	n.provide.owners = map[string]bool{}

	// The node's own context: the DHT and the loops live until Close, not
	// as long as the caller's ctx.
	runCtx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	listen := cfg.Listen
	if len(listen) == 0 {
		listen = DefaultListen
	}
	h, err := n.newHost(runCtx, key, listen)
	if err != nil && len(cfg.Listen) == 0 && ctx.Err() == nil {
		// The default port is taken (another node on this machine): any port.
		h, err = n.newHost(runCtx, key, []string{
			"/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1", "/ip6/::/tcp/0", "/ip6/::/udp/0/quic-v1",
		})
	}
	if err != nil {
		cancel()
		return nil, err
	}
	n.host = h
	n.started.Store(&h)
	h.SetStreamHandler(PairProtocol, n.handlePair)
	h.SetStreamHandler(StatusProtocol, n.handleStatus)

	if o, err := ReadOwner(cfg.Home); err == nil && o.ID != "" {
		n.ProvideOwner(o.ID)
	}

	sub, err := h.EventBus().Subscribe(eventTypes)
	if err != nil {
		cancel()
		_ = n.dht.Close()
		_ = h.Close()
		return nil, fmt.Errorf("start node: %w", err)
	}
	n.wg.Add(4)
	go func() { defer n.wg.Done(); n.watchEvents(runCtx, sub) }()
	go func() { defer n.wg.Done(); n.reconnectLoop(runCtx) }()
	go func() { defer n.wg.Done(); n.pingLoop(runCtx) }()
	go func() { defer n.wg.Done(); n.provideLoop(runCtx) }()

	if !cfg.NoMDNS {
		n.mdns = mdns.NewMdnsService(h, MDNSService, &mdnsNotifee{n: n, ctx: runCtx})
		if err := n.mdns.Start(); err != nil {
			n.log.Warn("mdns not started", "err", err)
			n.mdns = nil
		}
	}
	n.log.Info("node started", "node_id", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	return n, nil
}

func (n *Node) newHost(ctx context.Context, key crypto.PrivKey, listen []string) (host.Host, error) {
	cm, err := connmgr.NewConnManager(100, 400, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, fmt.Errorf("start node: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(n.gater),
		libp2p.UserAgent("cairn"),
		libp2p.EnableNATService(),
		libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
			d, err := dht.New(ctx, h,
				dht.ProtocolPrefix(DHTPrefix),
				dht.Mode(dht.ModeServer),
				dht.BootstrapPeersFunc(n.bootstrapPeers),
			)
			if err != nil {
				return nil, fmt.Errorf("start DHT: %w", err)
			}
			n.dht = d
			return d, nil
		}),
	}
	if !n.cfg.NoNATPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	switch n.cfg.Reachability {
	case "":
	case "public":
		opts = append(opts, libp2p.ForceReachabilityPublic())
	case "private":
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	default:
		return nil, fmt.Errorf("start node: reachability %q: want public, private or empty", n.cfg.Reachability)
	}
	if n.cfg.NoRelay {
		opts = append(opts, libp2p.DisableRelay())
	} else {
		opts = append(opts,
			libp2p.EnableRelay(),
			libp2p.EnableHolePunching(),
			// Serve as a relay when publicly reachable, for friends only,
			// without libp2p's 2 min / 128 KiB cap per relayed connection: a
			// friend behind a NAT that hole punching cannot open still gets
			// its backups through (the number of reservations and circuits
			// stays bounded by the relay's default resources).
			libp2p.EnableRelayService(relayv2.WithACL(relayACL{peers: n.peers}), relayv2.WithInfiniteLimits()),
			libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates,
				autorelay.WithBootDelay(0), autorelay.WithMinInterval(10*time.Second),
				// A friend that turned out not to be a relay (yet) is asked
				// again after a minute, not libp2p's default hour.
				autorelay.WithBackoff(time.Minute)),
		)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		if n.dht != nil {
			_ = n.dht.Close()
			n.dht = nil
		}
		return nil, fmt.Errorf("start node: %w", err)
	}
	return h, nil
}

// Close stops the node and saves the peer table.
func (n *Node) Close() error {
	n.cancel()
	if n.mdns != nil {
		_ = n.mdns.Close()
	}
	n.wg.Wait()
	var errs []error
	if n.dht != nil {
		errs = append(errs, n.dht.Close())
	}
	errs = append(errs, n.host.Close(), n.peers.Flush())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop node: %w", err)
	}
	n.log.Info("node stopped")
	return nil
}

// Host returns the libp2p host, for protocols built on the node (hosting).
func (n *Node) Host() host.Host { return n.host }

// ID is the node ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Peers returns the peer table; it is also the node's PeerPolicy.
func (n *Node) Peers() *Peers { return n.peers }

// Addrs returns the node's full multiaddrs, /p2p/ID included.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return nil
	}
	return addrs
}

// Settings returns the node's network settings.
func (n *Node) Settings() Settings {
	n.settings.Lock()
	defer n.settings.Unlock()
	return n.settings.s
}

// UpdateSettings changes the settings through fn and saves them.
func (n *Node) UpdateSettings(fn func(*Settings) error) (Settings, error) {
	n.settings.Lock()
	defer n.settings.Unlock()
	s := n.settings.s
	if err := fn(&s); err != nil {
		return n.settings.s, err
	}
	if err := SaveSettings(n.cfg.Home, s); err != nil {
		return n.settings.s, err
	}
	n.settings.s = s
	n.peers.SetCommunity(s.Community)
	return s, nil
}

// OfferBytes is the space the node offers now, and the free disk.
func (n *Node) OfferBytes() (offer, free int64) {
	free, _ = FreeDisk(n.cfg.Home.Dir)
	return n.Settings().Offer(free), free
}

// Owner returns the home's owner (zero without one).
func (n *Node) Owner() Owner {
	o, err := ReadOwner(n.cfg.Home)
	if err != nil {
		return Owner{}
	}
	return o
}

// PeerState is a row of the peer table with the live connection state.
type PeerState struct {
	Peer
	Connected bool
}

// PeerStates returns the peer table with live state filled in.
func (n *Node) PeerStates() []PeerState {
	list := n.peers.List()
	out := make([]PeerState, len(list))
	for i, p := range list {
		out[i] = PeerState{Peer: p, Connected: n.host.Network().Connectedness(p.ID) == network.Connected}
	}
	return out
}

// Connect dials a peer and waits up to timeout for the connection.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("connect to %s: %w", ai.ID, err)
	}
	return nil
}

// ProvideOwner announces on the DHT that this node holds data of (or acts
// for) the owner ownerID; the record is refreshed while the node runs.
func (n *Node) ProvideOwner(ownerID string) {
	n.provide.Lock()
	n.provide.owners[ownerID] = true
	n.provide.Unlock()
}

// OwnerKey is the DHT key (a CID) of an owner's provider records.
func OwnerKey(ownerID string) cid.Cid {
	h, _ := mh.Sum([]byte("cairn owner "+ownerID), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

// FindOwnerNodes asks the DHT for nodes that hold data of (or act for) an
// owner: what a recovering node calls first.
func (n *Node) FindOwnerNodes(ctx context.Context, ownerID string, max int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for ai := range n.dht.FindProvidersAsync(ctx, OwnerKey(ownerID), max) {
		if ai.ID != n.host.ID() {
			out = append(out, ai)
		}
	}
	return out
}

// CommunityKey is the DHT key under which nodes in community mode provide
// themselves, so that other members (reached through friends' DHT) find
// them.
func CommunityKey() cid.Cid { return OwnerKey("community") }

// FindCommunity asks the DHT for nodes in community mode.
func (n *Node) FindCommunity(ctx context.Context, max int) []peer.AddrInfo {
	var out []peer.AddrInfo
	for ai := range n.dht.FindProvidersAsync(ctx, CommunityKey(), max) {
		if ai.ID != n.host.ID() && n.peers.Trust(ai.ID) != TrustBlocked {
			out = append(out, ai)
		}
	}
	return out
}

// DHT returns the node's DHT.
func (n *Node) DHT() *dht.IpfsDHT { return n.dht }
