package p2p

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

var eventTypes = []any{
	new(event.EvtPeerConnectednessChanged),
	new(event.EvtPeerIdentificationCompleted),
}

// watchEvents keeps the peer table current: last seen, LAN, addresses.
func (n *Node) watchEvents(ctx context.Context, sub event.Subscription) {
	defer sub.Close()
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch ev := e.(type) {
			case event.EvtPeerConnectednessChanged:
				if ev.Connectedness == network.Connected {
					n.seen(ev.Peer)
				} else {
					n.peers.UpdateIfKnown(ev.Peer, func(p *Peer) { p.LastSeen = n.cfg.Now().UTC() })
				}
			case event.EvtPeerIdentificationCompleted:
				n.identified(ctx, ev)
			}
		}
	}
}

// seen records a live connection with a known peer.
func (n *Node) seen(id peer.ID) {
	lan := false
	for _, c := range n.host.Network().ConnsToPeer(id) {
		if isLAN(c.RemoteMultiaddr()) {
			lan = true
		}
	}
	n.peers.UpdateIfKnown(id, func(p *Peer) {
		p.LastSeen = n.cfg.Now().UTC()
		p.LAN = lan
	})
}

// identified learns a known peer's listen addresses and, for friends and
// community peers, asks for its status.
func (n *Node) identified(ctx context.Context, ev event.EvtPeerIdentificationCompleted) {
	var addrs []string
	for _, a := range ev.ListenAddrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		if manet.IsIPUnspecified(a) {
			continue
		}
		addrs = append(addrs, a.String())
	}
	known := n.peers.UpdateIfKnown(ev.Peer, func(p *Peer) {
		if len(addrs) > 0 {
			p.Addrs = addrs
		}
	})
	if !known {
		return
	}
	n.seen(ev.Peer)
	if t := n.peers.Trust(ev.Peer); t == TrustFriend || t == TrustCommunity {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := n.RefreshStatus(ctx, ev.Peer); err != nil {
				n.log.Debug("status exchange failed", "peer", ev.Peer.String(), "err", err)
			}
		}()
	}
}

// isLAN reports whether a peer address is on a local network.
func isLAN(a ma.Multiaddr) bool {
	if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
		return false
	}
	return manet.IsPrivateAddr(a) || manet.IsIPLoopback(a)
}

// reconnectLoop keeps friends connected, with exponential backoff per
// friend between failed attempts.
func (n *Node) reconnectLoop(ctx context.Context) {
	type state struct {
		next    time.Time
		backoff time.Duration
		busy    bool
	}
	states := map[peer.ID]*state{}
	done := make(chan struct {
		id peer.ID
		ok bool
	}, 16)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		now := n.cfg.Now()
		for _, f := range n.peers.Friends() {
			if n.host.Network().Connectedness(f.ID) == network.Connected {
				delete(states, f.ID)
				continue
			}
			st := states[f.ID]
			if st == nil {
				st = &state{backoff: n.cfg.ReconnectMin}
				states[f.ID] = st
			}
			if st.busy || now.Before(st.next) {
				continue
			}
			st.busy = true
			ai := f.AddrInfo()
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				ok := n.dialFriend(ctx, ai) == nil
				select {
				case done <- struct {
					id peer.ID
					ok bool
				}{ai.ID, ok}:
				case <-ctx.Done():
				}
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.kick:
			for _, st := range states {
				st.next = time.Time{}
			}
		case r := <-done:
			st := states[r.id]
			if st == nil {
				continue
			}
			st.busy = false
			if r.ok {
				delete(states, r.id)
				continue
			}
			jitter := time.Duration(rand.Int64N(int64(st.backoff)/4 + 1))
			st.next = n.cfg.Now().Add(st.backoff + jitter)
			st.backoff = min(2*st.backoff, n.cfg.ReconnectMax)
		}
	}
}

// WaitFriends waits until every friend is connected, or up to max.
func (n *Node) WaitFriends(ctx context.Context, max time.Duration) {
	n.Kick()
	t := time.NewTimer(max)
	defer t.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		for _, f := range n.peers.Friends() {
			if n.host.Network().Connectedness(f.ID) != network.Connected {
				all = false
				break
			}
		}
		if all {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			return
		case <-tick.C:
		}
	}
}

// Kick makes the node try to reach its friends now.
func (n *Node) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// dialFriend tries a friend's last known addresses, then the DHT.
func (n *Node) dialFriend(ctx context.Context, ai peer.AddrInfo) error {
	if len(ai.Addrs) > 0 {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.RecentlyConnectedAddrTTL)
	}
	err := n.Connect(ctx, peer.AddrInfo{ID: ai.ID}, 30*time.Second)
	if err == nil {
		return nil
	}
	if n.dht != nil && n.dht.RoutingTable().Size() > 0 {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		found, ferr := n.dht.FindPeer(fctx, ai.ID)
		cancel()
		if ferr == nil {
			return n.Connect(ctx, found, 30*time.Second)
		}
	}
	return err
}

// statusEvery is how many ping rounds pass between status refreshes.
const statusEvery = 10

// pingLoop measures the RTT of connected known peers, and every
// statusEvery rounds refreshes the status of connected friends and
// community peers (their offer and free space change).
func (n *Node) pingLoop(ctx context.Context) {
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range n.peers.List() {
			if round%statusEvery == 0 && (p.Trust == TrustFriend || p.Trust == TrustCommunity) &&
				n.host.Network().Connectedness(p.ID) == network.Connected {
				if err := n.RefreshStatus(ctx, p.ID); err != nil {
					n.log.Debug("status exchange failed", "peer", p.ID.String(), "err", err)
				}
			}
			if p.Trust == TrustBlocked || n.host.Network().Connectedness(p.ID) != network.Connected {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			res := <-ping.Ping(network.WithAllowLimitedConn(pctx, "ping"), n.host, p.ID)
			cancel()
			if res.Error == nil {
				rtt := float64(res.RTT.Microseconds()) / 1000
				n.peers.UpdateIfKnown(p.ID, func(p *Peer) {
					p.RTTMillis = rtt
					p.LastSeen = n.cfg.Now().UTC()
				})
			}
		}
		if err := n.peers.Flush(); err != nil {
			n.log.Warn("peer table not saved", "err", err)
		}
		t.Reset(n.cfg.PingInterval)
	}
}

// provideLoop publishes provider records for the owners this node serves.
func (n *Node) provideLoop(ctx context.Context) {
	const refresh = 12 * time.Hour
	last := map[string]time.Time{}
	t := time.NewTicker(n.cfg.ProvideRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n.dht == nil || n.dht.RoutingTable().Size() == 0 {
			continue
		}
		n.provide.Lock()
		var owners []string
		for o := range n.provide.owners {
			if n.cfg.Now().Sub(last[o]) > refresh {
				owners = append(owners, o)
			}
		}
		n.provide.Unlock()
		// The community key is provided like an owner's, named "community"
		// (owner IDs are hex, so the names cannot clash).
		if n.Settings().Community && n.cfg.Now().Sub(last["community"]) > refresh {
			owners = append(owners, "community")
		}
		for _, o := range owners {
			pctx, cancel := context.WithTimeout(ctx, time.Minute)
			err := n.dht.Provide(pctx, OwnerKey(o), true)
			cancel()
			if err != nil {
				n.log.Debug("provide failed", "owner_id", o, "err", err)
				continue
			}
			last[o] = n.cfg.Now()
		}
	}
}

// bootstrapPeers seeds the DHT: friends with known addresses only.
func (n *Node) bootstrapPeers() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, f := range n.peers.Friends() {
		if ai := f.AddrInfo(); len(ai.Addrs) > 0 {
			out = append(out, ai)
		}
	}
	return out
}

// relayCandidates feeds AutoRelay: connected friends with public addresses.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo, num)
	defer close(ch)
	hp := n.started.Load()
	if hp == nil {
		return ch // still starting: AutoRelay asks again later
	}
	h := *hp
	for _, f := range n.peers.Friends() {
		if len(ch) == num {
			break
		}
		ai := f.AddrInfo()
		public := false
		for _, a := range ai.Addrs {
			if manet.IsPublicAddr(a) {
				public = true
			}
		}
		if public || h.Network().Connectedness(f.ID) == network.Connected {
			ch <- ai
		}
	}
	return ch
}

// mdnsNotifee records peers found on the LAN and connects to friends.
type mdnsNotifee struct {
	n   *Node
	ctx context.Context
}

func (m *mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if ai.ID == n.host.ID() || n.peers.Trust(ai.ID) == TrustBlocked {
		return
	}
	if _, known := n.peers.Get(ai.ID); !known && n.peers.Len() >= maxPeerRows {
		return // a crowded LAN: strangers beyond the bound are not recorded
	}
	var addrs []string
	for _, a := range ai.Addrs {
		if len(addrs) < maxPeerAddrs {
			addrs = append(addrs, a.String())
		}
	}
	_ = n.peers.Update(ai.ID, false, func(p *Peer) {
		p.LAN = true
		p.Addrs = addrs
		p.LastSeen = n.cfg.Now().UTC()
		if p.Added.IsZero() {
			p.Added = n.cfg.Now().UTC()
		}
	})
	n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.Connect(m.ctx, ai, 30*time.Second); err != nil {
			n.log.Debug("lan peer not reached", "peer", ai.ID.String(), "err", err)
		}
	}()
}

// gater refuses connections with blocked peers.
type gater struct{ peers *Peers }

func (g *gater) InterceptPeerDial(p peer.ID) bool { return g.peers.Trust(p) != TrustBlocked }
func (g *gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool {
	return g.peers.Trust(p) != TrustBlocked
}
func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }
func (g *gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.peers.Trust(p) != TrustBlocked
}
func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// relayACL lets only friends use this node as a relay.
type relayACL struct{ peers *Peers }

func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool {
	return a.peers.Trust(p) == TrustFriend
}
func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.peers.Trust(src) != TrustBlocked && a.peers.Trust(dest) == TrustFriend
}
