package p2p

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/home"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Trust is what a node thinks of a peer.
type Trust string

// Trust levels. The zero value is a peer seen but not trusted.
const (
	TrustUnknown   Trust = ""
	TrustFriend    Trust = "friend"
	TrustCommunity Trust = "community"
	TrustBlocked   Trust = "blocked"
)

// PeerPolicy tells the hosting side how far to trust a peer. It is the
// shape internal/hosting consumes; *Peers implements it.
type PeerPolicy interface {
	Trust(node peer.ID) Trust
	QuotaOverride(node peer.ID) (bytes int64, ok bool)
}

var _ PeerPolicy = (*Peers)(nil)

// Peer is one row of the peer table, as persisted.
type Peer struct {
	ID         peer.ID   `json:"node_id"`
	Name       string    `json:"name,omitempty"`
	OwnerID    string    `json:"owner_id,omitempty"`
	Addrs      []string  `json:"addrs,omitempty"`
	LAN        bool      `json:"lan"`
	LastSeen   time.Time `json:"last_seen,omitzero"`
	RTTMillis  float64   `json:"rtt_ms,omitempty"`
	OfferBytes int64     `json:"offer_bytes,omitempty"`
	FreeBytes  int64     `json:"free_bytes,omitempty"`
	Trust      Trust     `json:"trust"`
	Quota      int64     `json:"quota_bytes,omitempty"` // per-friend quota override, 0 = none
	Cert       []byte    `json:"cert,omitempty"`        // the peer's node certificate (JSON)
	Added      time.Time `json:"added,omitzero"`
}

// AddrInfo returns the peer's last known addresses, unparseable ones left out.
func (p *Peer) AddrInfo() peer.AddrInfo {
	ai := peer.AddrInfo{ID: p.ID}
	for _, s := range p.Addrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			ai.Addrs = append(ai.Addrs, a)
		}
	}
	return ai
}

// peersFile is the persisted form of the table.
type peersFile struct {
	Version int    `json:"version"`
	Peers   []Peer `json:"peers"`
}

const peersFileVersion = 1

// PeersPath is the peer table's file in a home.
func PeersPath(h home.Home) string { return filepath.Join(h.Dir, "peers.json") }

// Peers is the peer table: every peer a node knows, friends, blocked and
// merely seen ones. It is safe for concurrent use; changes to what must
// survive a restart are saved at once, volatile ones (RTT, last seen) with
// the next save or Flush.
type Peers struct {
	path  string
	mu    sync.Mutex
	peers map[peer.ID]*Peer
	dirty bool
	// community is the node's community mode: unknown peers count as
	// community members when it is on.
	community bool
}

// maxPeersFile bounds the peer table file read at start.
const maxPeersFile = 16 << 20

// OpenPeers loads the peer table at path; a missing file is an empty table.
func OpenPeers(path string) (*Peers, error) {
	t := &Peers{path: path, peers: map[peer.ID]*Peer{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open peer table: %w", err)
	}
	if len(b) > maxPeersFile {
		return nil, fmt.Errorf("open peer table %s: file too large", path)
	}
	var f peersFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("open peer table %s: %w", path, err)
	}
	if f.Version != peersFileVersion {
		return nil, fmt.Errorf("open peer table %s: version %d not supported", path, f.Version)
	}
	for i := range f.Peers {
		p := f.Peers[i]
		if p.ID.Validate() != nil {
			continue
		}
		t.peers[p.ID] = &p
	}
	return t, nil
}

// SetCommunity switches community mode for the Trust of unknown peers.
func (t *Peers) SetCommunity(on bool) {
	t.mu.Lock()
	t.community = on
	t.mu.Unlock()
}

// Trust implements PeerPolicy.
func (t *Peers) Trust(id peer.ID) Trust {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if ok && p.Trust != TrustUnknown {
		return p.Trust
	}
	if t.community {
		return TrustCommunity
	}
	return TrustUnknown
}

// QuotaOverride implements PeerPolicy: a friend's own quota, if set.
func (t *Peers) QuotaOverride(id peer.ID) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok || p.Trust != TrustFriend || p.Quota <= 0 {
		return 0, false
	}
	return p.Quota, true
}

// Get returns a copy of a peer's row.
func (t *Peers) Get(id peer.ID) (Peer, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok {
		return Peer{}, false
	}
	return clonePeer(p), true
}

// List returns copies of all rows, friends first, then by name and ID.
func (t *Peers) List() []Peer {
	t.mu.Lock()
	out := make([]Peer, 0, len(t.peers))
	for _, p := range t.peers {
		out = append(out, clonePeer(p))
	}
	t.mu.Unlock()
	rank := map[Trust]int{TrustFriend: 0, TrustCommunity: 1, TrustUnknown: 2, TrustBlocked: 3}
	slices.SortFunc(out, func(a, b Peer) int {
		if d := rank[a.Trust] - rank[b.Trust]; d != 0 {
			return d
		}
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		} else if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// maxPeerRows bounds the rows that discovery (mDNS) may add on its own.
const maxPeerRows = 1024

// Len is the number of rows.
func (t *Peers) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.peers)
}

// Friends returns the rows of all friends.
func (t *Peers) Friends() []Peer {
	var out []Peer
	for _, p := range t.List() {
		if p.Trust == TrustFriend {
			out = append(out, p)
		}
	}
	return out
}

func clonePeer(p *Peer) Peer {
	c := *p
	c.Addrs = slices.Clone(p.Addrs)
	c.Cert = slices.Clone(p.Cert)
	return c
}

// Update changes a peer's row (creating it if needed) through fn and, when
// persist is true, saves the table at once.
func (t *Peers) Update(id peer.ID, persist bool, fn func(p *Peer)) error {
	t.mu.Lock()
	p, ok := t.peers[id]
	if !ok {
		p = &Peer{ID: id}
		t.peers[id] = p
	}
	fn(p)
	p.ID = id
	if len(p.Addrs) > maxPeerAddrs {
		p.Addrs = p.Addrs[:maxPeerAddrs]
	}
	t.dirty = true
	t.mu.Unlock()
	if persist {
		return t.Flush()
	}
	return nil
}

// UpdateIfKnown is Update for rows that exist; it reports whether one did.
func (t *Peers) UpdateIfKnown(id peer.ID, fn func(p *Peer)) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.peers[id]
	if !ok {
		return false
	}
	fn(p)
	p.ID = id
	t.dirty = true
	return true
}

// maxPeerAddrs bounds the addresses kept per peer.
const maxPeerAddrs = 16

// Remove deletes a peer's row and saves the table.
func (t *Peers) Remove(id peer.ID) error {
	t.mu.Lock()
	delete(t.peers, id)
	t.dirty = true
	t.mu.Unlock()
	return t.Flush()
}

// Flush saves the table if anything changed since the last save.
func (t *Peers) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dirty {
		return nil
	}
	f := peersFile{Version: peersFileVersion}
	for _, p := range t.peers {
		f.Peers = append(f.Peers, clonePeer(p))
	}
	slices.SortFunc(f.Peers, func(a, b Peer) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("save peer table: %w", err)
	}
	if err := home.WriteFileAtomic(t.path, b, 0o600); err != nil {
		return fmt.Errorf("save peer table: %w", err)
	}
	t.dirty = false
	return nil
}
