package p2p

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	ccrypto "github.com/cairn-backup/cairn/internal/crypto"
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	mh "github.com/multiformats/go-multihash"
)

// Pairing errors.
var (
	// ErrInviteRefused is returned by Join when the inviter refused the
	// code: unknown, already used, expired, or wrong.
	ErrInviteRefused = errors.New("invite refused")
	// ErrPairingFailed is returned when the other side did not prove it
	// knows the invite's secret, or broke the protocol.
	ErrPairingFailed = errors.New("pairing failed")
)

const (
	// DefaultInviteTTL is how long an invite code stays valid.
	DefaultInviteTTL = 15 * time.Minute
	maxInviteTTL     = 24 * time.Hour
	maxPending       = 32 // pending invites per node
	maxFailures      = 3  // wrong proofs before an invite is burnt
	pairTimeout      = 30 * time.Second
	nonceSize        = 32
	tagSize          = 8
)

type pendingInvite struct {
	secret   [secretSize]byte
	expires  time.Time
	failures int
	used     chan peer.ID // receives the joiner, once
}

// invites are the node's pending invites, keyed by tag. They live in
// memory only: an invite dies with the node that made it.
type invites struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[[tagSize]byte]*pendingInvite
}

func newInvites(now func() time.Time) *invites {
	return &invites{now: now, m: map[[tagSize]byte]*pendingInvite{}}
}

func inviteTag(secret [secretSize]byte) [tagSize]byte {
	h := sha256.Sum256(append([]byte("cairn invite tag v1|"), secret[:]...))
	var t [tagSize]byte
	copy(t[:], h[:])
	return t
}

func (iv *invites) add(secret [secretSize]byte, ttl time.Duration) (time.Time, error) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	now := iv.now()
	for t, p := range iv.m {
		if now.After(p.expires) {
			delete(iv.m, t)
		}
	}
	if len(iv.m) >= maxPending {
		return time.Time{}, fmt.Errorf("too many pending invites (%d): wait for some to expire", maxPending)
	}
	exp := now.Add(ttl)
	iv.m[inviteTag(secret)] = &pendingInvite{secret: secret, expires: exp, used: make(chan peer.ID, 1)}
	return exp, nil
}

// lookup returns a live invite by tag.
func (iv *invites) lookup(tag []byte) (*pendingInvite, bool) {
	if len(tag) != tagSize {
		return nil, false
	}
	iv.mu.Lock()
	defer iv.mu.Unlock()
	t := [tagSize]byte(tag)
	p, ok := iv.m[t]
	if !ok {
		return nil, false
	}
	if iv.now().After(p.expires) {
		delete(iv.m, t)
		return nil, false
	}
	c := *p
	return &c, true
}

// consume removes an invite after a good proof; it reports false when
// another pairing used it first.
func (iv *invites) consume(tag []byte) (chan<- peer.ID, bool) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	t := [tagSize]byte(tag)
	p, ok := iv.m[t]
	if !ok {
		return nil, false
	}
	delete(iv.m, t)
	return p.used, true
}

// waiter returns the channel that receives the joiner of a pending invite.
func (iv *invites) waiter(secret [secretSize]byte) (<-chan peer.ID, time.Time, bool) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	p, ok := iv.m[inviteTag(secret)]
	if !ok {
		return nil, time.Time{}, false
	}
	return p.used, p.expires, true
}

// ErrInviteExpired is returned by WaitInvite when the code expired unused.
var ErrInviteExpired = errors.New("the invite code expired unused")

// WaitInvite waits until someone joins with code, one of this node's
// pending invites, and returns the joiner. The pairing is complete (both
// sides recorded) by then.
func (n *Node) WaitInvite(ctx context.Context, code string) (peer.ID, error) {
	inv, err := DecodeInvite(code)
	if err != nil {
		return "", err
	}
	ch, exp, ok := n.invites.waiter(inv.Secret)
	if !ok {
		return "", ErrInviteExpired
	}
	t := time.NewTimer(time.Until(exp))
	defer t.Stop()
	select {
	case id := <-ch:
		return id, nil
	case <-t.C:
		return "", ErrInviteExpired
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// fail counts a wrong proof and burns the invite after maxFailures.
func (iv *invites) fail(tag []byte) {
	iv.mu.Lock()
	defer iv.mu.Unlock()
	t := [tagSize]byte(tag)
	if p, ok := iv.m[t]; ok {
		p.failures++
		if p.failures >= maxFailures {
			delete(iv.m, t)
		}
	}
}

// CreateInvite makes a one-time invite code valid for ttl (0: the default).
func (n *Node) CreateInvite(ttl time.Duration) (code string, expires time.Time, err error) {
	return n.createInvite(ttl, false)
}

// CreateShortInvite makes a short one-time invite code: the joiner must
// find this node by mDNS on its LAN, or through the DHT of its friends.
func (n *Node) CreateShortInvite(ttl time.Duration) (code string, expires time.Time, err error) {
	return n.createInvite(ttl, true)
}

// InviteKey is the DHT key under which the maker of a short invite
// provides itself, so that a joiner with friends in common finds it.
func InviteKey(tag [tagSize]byte) cid.Cid {
	h, _ := mh.Sum(append([]byte("cairn invite "), tag[:]...), mh.SHA2_256, -1)
	return cid.NewCidV1(cid.Raw, h)
}

func (n *Node) createInvite(ttl time.Duration, short bool) (code string, expires time.Time, err error) {
	if ttl <= 0 {
		ttl = DefaultInviteTTL
	}
	if ttl > maxInviteTTL {
		return "", time.Time{}, fmt.Errorf("invite lifetime %s is longer than %s", ttl, maxInviteTTL)
	}
	var secret [secretSize]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", time.Time{}, fmt.Errorf("create invite: %w", err)
	}
	expires, err = n.invites.add(secret, ttl)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create invite: %w", err)
	}
	if short {
		if n.dht != nil && n.dht.RoutingTable().Size() > 0 {
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := n.dht.Provide(ctx, InviteKey(inviteTag(secret)), true); err != nil {
					n.log.Debug("invite not announced on the DHT", "err", err)
				}
			}()
		}
		return EncodeShortInvite(n.host.ID(), secret), expires, nil
	}
	code, err = EncodeInvite(n.host.Peerstore().PubKey(n.host.ID()), secret, inviteAddrs(n.host.Addrs()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create invite: %w", err)
	}
	return code, expires, nil
}

// inviteAddrs orders addresses for an invite: public, then private, then
// loopback (kept only when there is nothing else); no relay addresses.
func inviteAddrs(addrs []ma.Multiaddr) []ma.Multiaddr {
	var pub, priv, loop []ma.Multiaddr
	for _, a := range addrs {
		switch {
		case manet.IsIPLoopback(a):
			loop = append(loop, a)
		case manet.IsPublicAddr(a):
			pub = append(pub, a)
		case manet.IsPrivateAddr(a):
			priv = append(priv, a)
		}
	}
	out := append(pub, priv...)
	if len(out) == 0 {
		out = loop
	}
	return out
}

func pairMAC(secret [secretSize]byte, role string, inviter, joiner peer.ID, nj, ni []byte) []byte {
	m := hmac.New(sha256.New, secret[:])
	for _, part := range [][]byte{[]byte("cairn pair v1 " + role), []byte(inviter), []byte(joiner), nj, ni} {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(part)))
		m.Write(l[:])
		m.Write(part)
	}
	return m.Sum(nil)
}

// myStatus is what this node tells peers about itself.
func (n *Node) myStatus() status {
	offer, free := n.OfferBytes()
	s := status{Name: n.cfg.Name, OwnerID: n.Owner().ID, OfferBytes: offer, FreeBytes: free, Cert: readCert(n.cfg.Home)}
	if len(s.Cert) > 4096 {
		s.Cert = nil
	}
	return s
}

// learn records what a peer said about itself. The owner ID is taken from
// the peer's node certificate when it has a valid one.
func (n *Node) learn(id peer.ID, s status, fn func(p *Peer)) error {
	owner := s.OwnerID
	var cert []byte
	if len(s.Cert) > 0 {
		c, err := ccrypto.ParseNodeCert(s.Cert)
		if err == nil {
			err = c.Verify(id.String(), n.cfg.Now())
		}
		if err != nil {
			n.log.Warn("peer certificate rejected", "peer", id.String(), "err", err)
		} else {
			owner, cert = c.OwnerID(), s.Cert
		}
	}
	return n.peers.Update(id, true, func(p *Peer) {
		if p.Name == "" {
			p.Name = s.Name
		}
		if owner != "" {
			p.OwnerID = owner
		}
		if cert != nil {
			p.Cert = cert
		}
		p.OfferBytes, p.FreeBytes = s.OfferBytes, s.FreeBytes
		if p.Added.IsZero() {
			p.Added = n.cfg.Now().UTC()
		}
		if fn != nil {
			fn(p)
		}
	})
}

func (n *Node) befriend(id peer.ID) {
	n.host.ConnManager().Protect(id, "friend")
}

// Join pairs with the node that made an invite code: both become each
// other's friends. It returns the new friend's row.
func (n *Node) Join(ctx context.Context, code string) (Peer, error) {
	inv, err := DecodeInvite(code)
	if err != nil {
		return Peer{}, err
	}
	if inv.Peer == "" {
		ai, err := n.findInviter(ctx, inv)
		if err != nil {
			return Peer{}, err
		}
		inv.Peer, inv.Addrs = ai.ID, ai.Addrs
	}
	if inv.Peer == n.host.ID() {
		return Peer{}, errors.New("join: this invite code was made by this node")
	}
	if n.peers.Trust(inv.Peer) == TrustBlocked {
		return Peer{}, fmt.Errorf("join: %s is blocked; remove it first", inv.Peer)
	}
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()
	n.host.Peerstore().AddAddrs(inv.Peer, inv.Addrs, peerstore.TempAddrTTL)
	if err := n.host.Connect(ctx, inv.AddrInfo()); err != nil {
		return Peer{}, fmt.Errorf("join: reach inviter %s: %w", inv.Peer, err)
	}
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "pair"), inv.Peer, PairProtocol)
	if err != nil {
		return Peer{}, fmt.Errorf("join: open pairing stream: %w", err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(pairTimeout))

	nj := make([]byte, nonceSize)
	if _, err := rand.Read(nj); err != nil {
		return Peer{}, fmt.Errorf("join: %w", err)
	}
	tag := inviteTag(inv.Secret)
	if err := writeMsg(s, &pairHello{Version: 1, Tag: tag[:], Nonce: nj}); err != nil {
		return Peer{}, fmt.Errorf("join: %w", err)
	}
	var ch pairChallenge
	if err := readMsg(s, &ch); err != nil {
		return Peer{}, fmt.Errorf("join: %w: %w", ErrPairingFailed, err)
	}
	if ch.Error != "" {
		return Peer{}, fmt.Errorf("join: %w: %s", ErrInviteRefused, clip(ch.Error))
	}
	if len(ch.Nonce) != nonceSize {
		return Peer{}, fmt.Errorf("join: %w: bad nonce", ErrPairingFailed)
	}
	me := n.myStatus()
	mac := pairMAC(inv.Secret, "joiner", inv.Peer, n.host.ID(), nj, ch.Nonce)
	if err := writeMsg(s, &pairProof{MAC: mac, Info: me}); err != nil {
		return Peer{}, fmt.Errorf("join: %w", err)
	}
	var reply pairProof
	if err := readMsg(s, &reply); err != nil {
		return Peer{}, fmt.Errorf("join: %w: %w", ErrPairingFailed, err)
	}
	if reply.Error != "" {
		return Peer{}, fmt.Errorf("join: %w: %s", ErrInviteRefused, clip(reply.Error))
	}
	want := pairMAC(inv.Secret, "inviter", inv.Peer, n.host.ID(), nj, ch.Nonce)
	if !hmac.Equal(reply.MAC, want) {
		return Peer{}, fmt.Errorf("join: %w: the inviter did not prove it made the code", ErrPairingFailed)
	}
	if err := reply.Info.check(); err != nil {
		return Peer{}, fmt.Errorf("join: %w: %w", ErrPairingFailed, err)
	}
	addrs := addrStrings(n.host.Peerstore().Addrs(inv.Peer))
	if err := n.learn(inv.Peer, reply.Info, func(p *Peer) {
		p.Trust = TrustFriend
		if len(addrs) > 0 {
			p.Addrs = addrs
		}
		p.LastSeen = n.cfg.Now().UTC()
	}); err != nil {
		return Peer{}, fmt.Errorf("join: %w", err)
	}
	n.befriend(inv.Peer)
	n.seen(inv.Peer)
	p, _ := n.peers.Get(inv.Peer)
	n.log.Info("paired", "peer", inv.Peer.String(), "role", "joiner")
	return p, nil
}

// ErrInviterNotFound is returned by Join for a short code whose maker was
// neither seen on the LAN nor found through the DHT in time.
var ErrInviterNotFound = errors.New("the node that made this short code was not found on the LAN or through friends; use the full code")

// findInviter looks for the maker of a short code among the peers this
// node knows (mDNS puts LAN peers there) and on the DHT.
func (n *Node) findInviter(ctx context.Context, inv *Invite) (peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, findInviterTimeout)
	defer cancel()
	found := make(chan peer.AddrInfo, 1)
	if n.dht != nil && n.dht.RoutingTable().Size() > 0 {
		go func() {
			for ai := range n.dht.FindProvidersAsync(ctx, InviteKey(inviteTag(inv.Secret)), 4) {
				if bytes.Equal(idHash(ai.ID), inv.IDHash) {
					select {
					case found <- ai:
					default:
					}
					return
				}
			}
		}()
	}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		for _, id := range n.host.Peerstore().Peers() {
			if id != n.host.ID() && bytes.Equal(idHash(id), inv.IDHash) {
				return peer.AddrInfo{ID: id, Addrs: n.host.Peerstore().Addrs(id)}, nil
			}
		}
		select {
		case ai := <-found:
			return ai, nil
		case <-ctx.Done():
			return peer.AddrInfo{}, fmt.Errorf("join: %w", ErrInviterNotFound)
		case <-t.C:
		}
	}
}

const findInviterTimeout = 30 * time.Second

// handlePair is the inviter's side of /cairn/pair/1.
func (n *Node) handlePair(s network.Stream) {
	defer s.Close()
	remote := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(pairTimeout))
	refuse := func(msg string, v any) {
		_ = writeMsg(s, v)
		n.log.Info("pairing refused", "peer", remote.String(), "reason", msg)
	}
	var hello pairHello
	if err := readMsg(s, &hello); err != nil {
		n.log.Info("pairing refused", "peer", remote.String(), "reason", "bad hello", "err", err)
		_ = s.Reset()
		return
	}
	if hello.Version != 1 || len(hello.Nonce) != nonceSize {
		refuse("bad hello", &pairChallenge{Error: "unsupported pairing request"})
		return
	}
	inv, ok := n.invites.lookup(hello.Tag)
	if !ok {
		refuse("unknown invite", &pairChallenge{Error: "the invite code is unknown, used or expired"})
		return
	}
	ni := make([]byte, nonceSize)
	if _, err := rand.Read(ni); err != nil {
		_ = s.Reset()
		return
	}
	if err := writeMsg(s, &pairChallenge{Nonce: ni}); err != nil {
		return
	}
	var proof pairProof
	if err := readMsg(s, &proof); err != nil {
		n.log.Info("pairing refused", "peer", remote.String(), "reason", "bad proof", "err", err)
		_ = s.Reset()
		return
	}
	want := pairMAC(inv.secret, "joiner", n.host.ID(), remote, hello.Nonce, ni)
	if !hmac.Equal(proof.MAC, want) {
		n.invites.fail(hello.Tag)
		refuse("wrong secret", &pairProof{Error: "wrong invite code"})
		return
	}
	if err := proof.Info.check(); err != nil {
		refuse("bad status", &pairProof{Error: "malformed pairing message"})
		return
	}
	used, ok := n.invites.consume(hello.Tag)
	if !ok {
		refuse("invite used", &pairProof{Error: "the invite code is unknown, used or expired"})
		return
	}
	addrs := addrStrings(n.host.Peerstore().Addrs(remote))
	if err := n.learn(remote, proof.Info, func(p *Peer) {
		p.Trust = TrustFriend
		if len(p.Addrs) == 0 {
			p.Addrs = addrs
		}
		p.LastSeen = n.cfg.Now().UTC()
	}); err != nil {
		n.log.Error("peer table not saved", "err", err)
		refuse("internal error", &pairProof{Error: "the inviter could not save the pairing"})
		return
	}
	mac := pairMAC(inv.secret, "inviter", n.host.ID(), remote, hello.Nonce, ni)
	if err := writeMsg(s, &pairProof{MAC: mac, Info: n.myStatus()}); err != nil {
		return
	}
	n.befriend(remote)
	n.seen(remote)
	used <- remote // buffered, written once
	n.log.Info("paired", "peer", remote.String(), "role", "inviter")
}

// handleStatus answers /cairn/status/1 for friends, and for community
// peers in community mode; strangers learn nothing (not even the owner ID).
func (n *Node) handleStatus(s network.Stream) {
	defer s.Close()
	if t := n.peers.Trust(s.Conn().RemotePeer()); t != TrustFriend && t != TrustCommunity {
		_ = s.Reset()
		return
	}
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	st := n.myStatus()
	_ = writeMsg(s, &st)
}

// RefreshStatus asks a peer for its status (owner, offer, free space,
// certificate) and records it.
func (n *Node) RefreshStatus(ctx context.Context, id peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := n.host.NewStream(network.WithAllowLimitedConn(ctx, "status"), id, StatusProtocol)
	if err != nil {
		return fmt.Errorf("status of %s: %w", id, err)
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	var st status
	if err := readMsg(s, &st); err != nil {
		return fmt.Errorf("status of %s: %w", id, err)
	}
	if err := st.check(); err != nil {
		return fmt.Errorf("status of %s: %w", id, err)
	}
	if _, known := n.peers.Get(id); !known {
		return nil
	}
	return n.learn(id, st, nil)
}

// AddPeer records a peer given by a full multiaddr (with /p2p/ID) as a
// friend of this node and tries to connect to it. The row is kept even
// when the peer cannot be reached now.
func (n *Node) AddPeer(ctx context.Context, addr string) (Peer, error) {
	a, err := ma.NewMultiaddr(addr)
	if err != nil {
		return Peer{}, fmt.Errorf("add peer: %w", err)
	}
	ai, err := peer.AddrInfoFromP2pAddr(a)
	if err != nil {
		return Peer{}, fmt.Errorf("add peer %s: want a full address ending in /p2p/NODE_ID: %w", addr, err)
	}
	if ai.ID == n.host.ID() {
		return Peer{}, errors.New("add peer: that is this node")
	}
	if err := n.peers.Update(ai.ID, true, func(p *Peer) {
		p.Trust = TrustFriend
		p.Addrs = append(addrStrings(ai.Addrs), slices.DeleteFunc(p.Addrs, func(s string) bool {
			return slices.Contains(addrStrings(ai.Addrs), s)
		})...)
		if p.Added.IsZero() {
			p.Added = n.cfg.Now().UTC()
		}
	}); err != nil {
		return Peer{}, err
	}
	n.befriend(ai.ID)
	if err := n.Connect(ctx, *ai, 20*time.Second); err != nil {
		n.log.Info("added peer not reachable now", "peer", ai.ID.String(), "err", err)
	} else if err := n.RefreshStatus(ctx, ai.ID); err != nil {
		n.log.Debug("status exchange failed", "peer", ai.ID.String(), "err", err)
	}
	p, _ := n.peers.Get(ai.ID)
	return p, nil
}

// ErrUnknownPeer is returned for a node ID not in the peer table.
var ErrUnknownPeer = errors.New("no such peer in the peer table")

// RemovePeer forgets a peer and drops its connections.
func (n *Node) RemovePeer(id peer.ID) error {
	if _, ok := n.peers.Get(id); !ok {
		return fmt.Errorf("remove %s: %w", id, ErrUnknownPeer)
	}
	if err := n.peers.Remove(id); err != nil {
		return err
	}
	n.host.ConnManager().Unprotect(id, "friend")
	_ = n.host.Network().ClosePeer(id)
	return nil
}

// BlockPeer marks a peer blocked (it may be unknown so far) and drops its
// connections; the gater refuses it from then on.
func (n *Node) BlockPeer(id peer.ID) error {
	if err := n.peers.Update(id, true, func(p *Peer) {
		p.Trust = TrustBlocked
		if p.Added.IsZero() {
			p.Added = n.cfg.Now().UTC()
		}
	}); err != nil {
		return err
	}
	n.host.ConnManager().Unprotect(id, "friend")
	_ = n.host.Network().ClosePeer(id)
	return nil
}

// NamePeer sets a known peer's name.
func (n *Node) NamePeer(id peer.ID, name string) error {
	if len(name) > 64 {
		return errors.New("name peer: a name is at most 64 bytes")
	}
	if _, ok := n.peers.Get(id); !ok {
		return fmt.Errorf("name %s: %w", id, ErrUnknownPeer)
	}
	return n.peers.Update(id, true, func(p *Peer) { p.Name = name })
}

// SetQuota sets a friend's own quota (0 removes it).
func (n *Node) SetQuota(id peer.ID, bytes int64) error {
	p, ok := n.peers.Get(id)
	if !ok {
		return fmt.Errorf("quota for %s: %w", id, ErrUnknownPeer)
	}
	if p.Trust != TrustFriend {
		return fmt.Errorf("quota for %s: only friends have their own quota", id)
	}
	return n.peers.Update(id, true, func(p *Peer) { p.Quota = bytes })
}

func addrStrings(addrs []ma.Multiaddr) []string {
	var out []string
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			continue
		}
		if len(out) < maxPeerAddrs {
			out = append(out, a.String())
		}
	}
	return out
}

// clip bounds a peer-supplied message before it reaches logs or errors.
func clip(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return fmt.Sprintf("%q", s)
}
