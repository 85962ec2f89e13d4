package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/daemon"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// friends returns the home's friends from the peer table on disk, without
// starting a node.
func friends(h home.Home) []p2p.Peer {
	t, err := p2p.OpenPeers(p2p.PeersPath(h))
	if err != nil {
		return nil
	}
	return t.Friends()
}

// hostList seals the list of the home's hosts for the repository.
func hostList(r *repo.Repository, fs []p2p.Peer) ([]byte, error) {
	l := &repo.HostList{Updated: time.Now().UTC()}
	for _, f := range fs {
		l.Hosts = append(l.Hosts, repo.HostInfo{NodeID: f.ID.String(), Name: f.Name, Addrs: f.Addrs})
	}
	return repo.SealHostList(r.Keys(), l)
}

// placeOnPeers places the home's repository on its friends' nodes after a
// backup: through the running daemon, or a node started for the purpose.
// It does nothing (nil summary) for a repository outside the home or a
// home without friends.
//
// limitUp (bytes per second, 0 for none) limits this placement's uploads on
// top of the node's own limits: a source's limit.
func (g *Globals) placeOnPeers(ctx context.Context, r *repo.Repository, redundancy string, limitUp int64) (*placement.Summary, error) {
	_, inHome, err := g.repoDir()
	if err != nil || !inHome {
		return nil, err
	}
	h, err := g.home()
	if err != nil {
		return nil, err
	}
	fs := friends(h)
	if len(fs) == 0 {
		return nil, nil
	}
	var red placement.Redundancy
	if redundancy != "" {
		if red, err = placement.ParseRedundancy(redundancy); err != nil {
			return nil, fmt.Errorf("%w: --redundancy: %v", ErrUsage, err)
		}
	}
	hl, err := hostList(r, fs)
	if err != nil {
		return nil, err
	}
	var sum placement.Summary
	err = g.withPeers(ctx, h, func(ctx context.Context, c *api.Client) error {
		return c.Do(ctx, "POST", daemon.PathPlacementSync, daemon.SyncRequest{Redundancy: redundancy, HostList: hl, LimitUp: limitUp}, &sum)
	}, func(ctx context.Context, p *peerstore.Peers, st *local.Store) error {
		if st == nil {
			return repo.ErrNoRepository
		}
		so := placement.SyncOptions{Redundancy: red, HostList: hl}
		if !g.Quiet && !g.JSON && g.stderrIsTerminal() {
			line := &statusLine{w: g.Stderr}
			defer line.clear()
			start := time.Now()
			so.Progress = func(s placement.Summary) {
				rate := float64(s.BytesSent) / max(time.Since(start).Seconds(), 0.001)
				line.set(fmt.Sprintf("placing on peers: %d pieces, %s sent, %s/s", s.PiecesSent, humanBytes(s.BytesSent), humanBytes(int64(rate))))
			}
		}
		var serr error
		sum, serr = p.Sync(peerstore.WithUploadLimit(ctx, limitUp), st, so)
		return serr
	})
	if err != nil {
		return nil, fmt.Errorf("place on peers: %w", err)
	}
	return &sum, nil
}

// placementText describes a placement summary for people.
func placementText(s *placement.Summary) string {
	txt := fmt.Sprintf("peers: %d packs placed", s.Placed)
	if s.Degraded > 0 {
		txt += fmt.Sprintf(", %d degraded (will complete when hosts return)", s.Degraded)
	}
	if s.Missing > 0 {
		txt += fmt.Sprintf(", %d not yet on any host", s.Missing)
	}
	txt += fmt.Sprintf("; %s sent", humanBytes(s.BytesSent))
	return txt
}

// maintainPeers runs one life-cycle round of the home's placements now:
// in the running daemon, or in a node started for it.
func (g *Globals) maintainPeers(ctx context.Context) error {
	h, err := g.home()
	if err != nil {
		return err
	}
	if len(friends(h)) == 0 {
		return nil
	}
	err = g.withPeers(ctx, h, func(ctx context.Context, c *api.Client) error {
		var st placement.Status
		return c.Do(ctx, "POST", daemon.PathPlacementMaintain, struct{}{}, &st)
	}, func(ctx context.Context, p *peerstore.Peers, st *local.Store) error {
		var src store.Reader // a nil *local.Store must stay a nil interface
		if st != nil {
			src = st
		}
		return p.Maintain(ctx, src)
	})
	if err != nil {
		return fmt.Errorf("maintain placements: %w", err)
	}
	return nil
}

// dropPlacedPacks deletes the local copies of packs that are fully placed
// on peers (--no-local), keeping the metadata: later backups still
// deduplicate against the index, and reads of those packs go to the peers.
func dropPlacedPacks(ctx context.Context, h home.Home) (int, int64, error) {
	e, err := placement.OpenReadOnly(ctx, placement.Options{Path: peerstore.PlacementPath(h)})
	if err != nil {
		return 0, 0, err
	}
	defer e.Close()
	st, err := local.Open(h.RepoDir())
	if err != nil {
		return 0, 0, err
	}
	var drop []store.Info
	err = st.List(ctx, store.Pack, func(i store.Info) error {
		if e.CountsOf([]store.Handle{i.Handle}).Placed == 1 {
			drop = append(drop, i)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	var n int
	var size int64
	for _, i := range drop {
		if err := st.Delete(ctx, i.Handle); err != nil {
			return n, size, err
		}
		n++
		size += i.Size
	}
	return n, size, nil
}

// reconcilePeers deletes on the hosts what the home's repository no longer
// has, after prune or forget removed it locally.
func (g *Globals) reconcilePeers(ctx context.Context, r *repo.Repository) error {
	_, inHome, err := g.repoDir()
	if err != nil || !inHome {
		return err
	}
	h, err := g.home()
	if err != nil {
		return err
	}
	if _, err := os.Stat(peerstore.PlacementPath(h)); err != nil {
		return nil // nothing was ever placed
	}
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	if len(r.DamagedIndexes()) > 0 {
		return errors.New("an index is damaged: not deleting anything on peers (run cairn repair index)")
	}
	var names []string
	packs := map[string]bool{}
	for id := range r.Index().Packs() {
		names = append(names, id.String())
		packs[id.String()] = true
	}
	return g.withPeers(ctx, h, func(ctx context.Context, c *api.Client) error {
		var sum placement.Summary
		return c.Do(ctx, "POST", daemon.PathPlacementReconcile, daemon.ReconcileRequest{Packs: names}, &sum)
	}, func(ctx context.Context, p *peerstore.Peers, st *local.Store) error {
		if st == nil {
			return repo.ErrNoRepository
		}
		_, err := p.Reconcile(ctx, peerstore.KeepLocal(ctx, st, packs))
		return err
	})
}

// withPeers runs a placement operation for the home: in its running
// daemon through the API (remote), or, when none runs, here on a node
// started for it, with the home's placement record and local repository
// (st is nil when the home has none).
func (g *Globals) withPeers(ctx context.Context, h home.Home, remote func(context.Context, *api.Client) error, here func(context.Context, *peerstore.Peers, *local.Store) error) error {
	return g.withNode(ctx, func(ctx context.Context, c *api.Client, d *daemon.Daemon) error {
		if d == nil {
			return remote(ctx, c)
		}
		p, err := peerstore.Open(ctx, peerstore.Options{Home: h, Node: d.Node()})
		if err != nil {
			return err
		}
		defer p.Close()
		st, err := local.Open(h.RepoDir())
		if err != nil {
			st = nil
		}
		return here(ctx, p, st)
	})
}
