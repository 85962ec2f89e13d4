package peerstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/schedule"
	"github.com/cairn-backup/cairn/internal/store"
)

// Options configure Peers.
type Options struct {
	Home home.Home
	Node *p2p.Node
	// Signer proves ownership to hosts; nil uses the node's key with the
	// home's node certificate (so no passphrase is needed).
	Signer *hostclient.Signer
	// Redundancy for packs placed from now on (zero: chosen from the
	// number of hosts).
	Redundancy placement.Redundancy
	Logger     *slog.Logger
}

// Peers is the owner's side of the peer network for one node.
type Peers struct {
	node   *p2p.Node
	client *hostclient.Client
	engine *placement.Engine
	log    *slog.Logger

	home home.Home

	mu     sync.Mutex
	hosts  map[peer.ID]*host
	limits schedule.Limits
	shape  *schedule.Shaper
	window schedule.Window
}

// reload reads the node's bandwidth limits and WAN window from its
// settings, so a change applies from the next round on.
func (p *Peers) reload() {
	st, err := p2p.LoadSettings(p.home)
	if err != nil {
		p.log.Warn("read settings", "err", err)
		return
	}
	l := schedule.Limits{Up: st.LimitUp, Down: st.LimitDown, PeerUp: st.PeerLimitUp, PeerDown: st.PeerLimitDown}
	w, err := schedule.ParseWindow(st.WANWindow)
	if err != nil {
		p.log.Warn("bad WAN window in settings", "window", st.WANWindow, "err", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shape == nil || l != p.limits {
		p.limits, p.shape = l, schedule.NewShaper(l)
	}
	p.window = w
}

func (p *Peers) shaper() *schedule.Shaper {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shape
}

type uploadLimitKey struct{}

// WithUploadLimit adds a limit (bytes per second) to the uploads made with
// ctx, on top of the node's: a source's own limit.
func WithUploadLimit(ctx context.Context, bps int64) context.Context {
	if bps <= 0 {
		return ctx
	}
	return context.WithValue(ctx, uploadLimitKey{}, schedule.NewLimiter(bps))
}

func uploadLimit(ctx context.Context) []*rate.Limiter {
	if l, ok := ctx.Value(uploadLimitKey{}).(*rate.Limiter); ok {
		return []*rate.Limiter{l}
	}
	return nil
}

// PlacementPath is where the placement record lives in a home.
func PlacementPath(h home.Home) string { return filepath.Join(h.Dir, "placement.db") }

// ErrNoCert is returned when the node has no certificate from its owner
// and no other signer was given: the owner has not unlocked a repository
// on this node yet.
var ErrNoCert = errors.New("this node is not certified by an owner yet (run a backup or cairn init first)")

// NodeSigner returns the signer made of the home's node key and certificate.
func NodeSigner(h home.Home) (*hostclient.Signer, error) {
	b, err := os.ReadFile(h.NodeCertPath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoCert
		}
		return nil, fmt.Errorf("read node certificate: %w", err)
	}
	cert, err := crypto.ParseNodeCert(b)
	if err != nil {
		return nil, err
	}
	key, err := p2p.LoadOrCreateKey(h.NodeKeyPath())
	if err != nil {
		return nil, err
	}
	return hostclient.NodeSigner(key, cert)
}

// Open prepares the owner's side for a running node.
func Open(ctx context.Context, o Options) (*Peers, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sig := o.Signer
	if sig == nil {
		var err error
		if sig, err = NodeSigner(o.Home); err != nil {
			return nil, err
		}
	}
	if err := o.Home.Ensure(); err != nil {
		return nil, err
	}
	e, err := placement.Open(ctx, placement.Options{Path: PlacementPath(o.Home), Redundancy: o.Redundancy, Logger: o.Logger})
	if err != nil {
		return nil, err
	}
	p := &Peers{
		node:   o.Node,
		client: hostclient.New(o.Node.Host(), sig, hostclient.Options{}),
		engine: e, log: o.Logger, hosts: map[peer.ID]*host{}, home: o.Home,
	}
	p.reload()
	return p, nil
}

// Close closes the placement record.
func (p *Peers) Close() error { return p.engine.Close() }

// Engine returns the placement engine.
func (p *Peers) Engine() *placement.Engine { return p.engine }

func (p *Peers) hostFor(id peer.ID) *host {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hosts[id]
	if !ok {
		h = &host{c: p.client, id: id, p: p}
		p.hosts[id] = h
	}
	return h
}

// Candidates turns the peer table into placement candidates: friends and
// community peers, never blocked ones or this node itself. Peers not
// connected are dialled (in parallel, briefly) first, so Online is fresh.
// Hosts outside the LAN count as offline for placement while the WAN
// window is closed; reads (restores) ignore the window.
func (p *Peers) Candidates(ctx context.Context) []placement.Candidate {
	return p.candidates(ctx, false)
}

func (p *Peers) candidates(ctx context.Context, placing bool) []placement.Candidate {
	p.mu.Lock()
	wanClosed := placing && !p.window.Open(time.Now(), time.Local)
	p.mu.Unlock()
	states := p.node.PeerStates()
	var wg sync.WaitGroup
	for _, ps := range states {
		if ps.Connected || ps.Trust == p2p.TrustBlocked || ps.ID == p.node.ID() || len(ps.Addrs) == 0 {
			continue
		}
		wg.Add(1)
		go func(ps p2p.PeerState) {
			defer wg.Done()
			ai := peer.AddrInfo{ID: ps.ID}
			for _, a := range ps.Addrs {
				if m, err := ma.NewMultiaddr(a); err == nil {
					ai.Addrs = append(ai.Addrs, m)
				}
			}
			if err := p.node.Connect(ctx, ai, 5*time.Second); err != nil {
				p.log.Debug("peer unreachable", "peer", ps.ID, "err", err)
			}
		}(ps)
	}
	wg.Wait()
	var out []placement.Candidate
	for _, ps := range p.node.PeerStates() {
		if ps.ID == p.node.ID() {
			continue
		}
		switch ps.Trust {
		case p2p.TrustFriend, p2p.TrustCommunity:
		default:
			continue
		}
		out = append(out, placement.Candidate{
			Host: p.hostFor(ps.ID),
			Info: placement.HostInfo{
				Trust:     string(ps.Trust),
				RTT:       time.Duration(ps.RTTMillis * float64(time.Millisecond)),
				FreeBytes: ps.FreeBytes,
				Online:    ps.Connected && !(wanClosed && !ps.LAN),
			},
		})
	}
	return out
}

// Sync places the local repository's objects on the hosts.
func (p *Peers) Sync(ctx context.Context, src store.Reader, so placement.SyncOptions) (placement.Summary, error) {
	p.reload()
	return p.engine.Sync(ctx, src, p.candidates(ctx, true), so)
}

// Store returns the hosts as a store.Store (reads verify every byte).
func (p *Peers) Store(red placement.Redundancy) store.Store {
	var once sync.Once
	var cands []placement.Candidate
	return placement.NewStore(p.engine, func() []placement.Candidate {
		once.Do(func() { cands = p.Candidates(context.Background()) })
		return cands
	}, placement.StoreOptions{Redundancy: red})
}

// Maintain runs one round of the life cycle: complete placements from the
// local repository (src may be nil), renew leases that end within a
// month, audit a few pieces, and repair what audits or absences found.
func (p *Peers) Maintain(ctx context.Context, src store.Reader) error {
	p.reload()
	hosts := p.candidates(ctx, true)
	var errs []error
	if _, err := p.engine.Sync(ctx, src, hosts, placement.SyncOptions{}); err != nil {
		errs = append(errs, fmt.Errorf("sync: %w", err))
	}
	if _, err := p.engine.RenewLeases(ctx, hosts, 30*24*time.Hour); err != nil {
		errs = append(errs, fmt.Errorf("renew: %w", err))
	}
	if _, err := p.engine.Audit(ctx, hosts, 8); err != nil {
		errs = append(errs, fmt.Errorf("audit: %w", err))
	}
	if _, err := p.engine.Repair(ctx, src, hosts); err != nil {
		errs = append(errs, fmt.Errorf("repair: %w", err))
	}
	return errors.Join(errs...)
}

// Reconcile forgets, everywhere, the objects the record places that the
// repository no longer has: keep reports whether an object still exists.
// Hosts delete their copies (those offline do when they are next seen).
func (p *Peers) Reconcile(ctx context.Context, keep func(store.Handle) bool) (placement.Summary, error) {
	var gone []store.Handle
	for _, h := range p.engine.Handles() {
		if !keep(h) {
			gone = append(gone, h)
		}
	}
	if len(gone) == 0 {
		return placement.Summary{}, nil
	}
	return p.engine.Forget(ctx, p.candidates(ctx, true), gone)
}

// KeepLocal is the keep function of Reconcile for a local repository whose
// packs are those named in packs (from its index: with --no-local they are
// not on disk) and whose metadata is on disk. The host list is kept: the
// engine replaces it itself.
func KeepLocal(ctx context.Context, local store.Reader, packs map[string]bool) func(store.Handle) bool {
	return func(h store.Handle) bool {
		switch h.Type {
		case store.Meta, store.Lock:
			return true
		case store.Pack:
			return packs[h.Name]
		}
		_, err := local.Stat(ctx, h)
		return !errors.Is(err, store.ErrNotFound)
	}
}
