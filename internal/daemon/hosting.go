package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/cairn-backup/cairn/internal/hosting"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// hostingPolicy adapts the peer table to hosting's PeerPolicy.
type hostingPolicy struct{ peers *p2p.Peers }

var (
	_ hosting.PeerPolicy  = hostingPolicy{}
	_ hosting.OwnerPolicy = hostingPolicy{}
)

var _ hosting.PeerPolicy = hostingPolicy{}

func (p hostingPolicy) Trust(id peer.ID) hosting.Trust { return hosting.Trust(p.peers.Trust(id)) }

// TrustOwner makes a friend of every node an owner certifies once one of
// that owner's nodes is a friend: a recovered machine goes on backing up
// without pairing again.
func (p hostingPolicy) TrustOwner(ownerID string) hosting.Trust {
	for _, f := range p.peers.Friends() {
		if f.OwnerID != "" && f.OwnerID == ownerID {
			return hosting.TrustFriend
		}
	}
	return hosting.TrustUnknown
}
func (p hostingPolicy) QuotaOverride(id peer.ID) (int64, bool) {
	return p.peers.QuotaOverride(id)
}

// Intervals of the hosting services.
const (
	hostingGCEvery    = time.Hour
	offerRefreshEvery = 10 * time.Minute
)

// EnableHosting makes the daemon keep other owners' objects: it opens
// hosting's store in the home when the node starts, serves the storage
// protocol on the node's host, follows the offer and community settings,
// feeds the peer table's ledger columns, and collects expired leases.
// It returns a function giving the server once started (nil before).
func EnableHosting(d *Daemon) func() *hosting.Server {
	var srv *hosting.Server
	d.OnStart(func(ctx context.Context, d *Daemon) error {
		node := d.Node()
		s, err := hosting.Open(ctx, hosting.Config{
			Dir:      d.Home().HostedDir(),
			Settings: hostingSettings(node),
			Policy:   hostingPolicy{peers: node.Peers()},
			Logger:   d.log,
		})
		if err != nil {
			return fmt.Errorf("open hosting: %w", err)
		}
		srv = s
		s.Register(node.Host())
		d.OnStop(s.Close)
		d.OnSettings(func(p2p.Settings) { s.SetSettings(hostingSettings(node)) })
		d.SetLedger(func(ctx context.Context) (map[peer.ID]Held, error) {
			l, err := s.Ledger(ctx)
			if err != nil {
				return nil, err
			}
			out := make(map[peer.ID]Held, len(l))
			for id, e := range l {
				out[id] = Held{ForThem: e.HeldFor, ByThem: e.HeldBy}
			}
			return out, nil
		})
		d.AddService("hosting-gc", func(ctx context.Context) error {
			s.RunGC(ctx, hostingGCEvery)
			return ctx.Err()
		})
		d.AddService("offer-refresh", func(ctx context.Context) error {
			t := time.NewTicker(offerRefreshEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
					s.SetSettings(hostingSettings(node))
				}
			}
		})
		return nil
	})
	return func() *hosting.Server { return srv }
}

// hostingSettings are hosting's rules from the node's settings: the
// offer now (a percentage follows the free disk) and community mode.
func hostingSettings(n *p2p.Node) hosting.Settings {
	st := hosting.DefaultSettings()
	st.OfferBytes, _ = n.OfferBytes()
	st.Community = n.Settings().Community
	return st
}
