package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cairn-backup/cairn/internal/hosting"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// maintainEvery is how often the daemon completes placements, renews
// leases, audits hosts and repairs what it finds.
const maintainEvery = 10 * time.Minute

// PlacementAPI is how the CLI asks a running daemon to place the local
// repository on peers now.
const (
	PathPlacementSync      = "/v1/placement/sync"
	PathPlacementMaintain  = "/v1/placement/maintain"
	PathPlacementReconcile = "/v1/placement/reconcile"
)

// ReconcileRequest names the packs the repository still has (its index);
// placed objects the repository no longer has are deleted on the hosts.
type ReconcileRequest struct {
	Packs []string `json:"packs"`
}

// SyncRequest asks for a placement pass.
type SyncRequest struct {
	Redundancy string `json:"redundancy,omitempty"`
	HostList   []byte `json:"host_list,omitempty"`
	// LimitUp limits this pass's uploads (bytes per second) on top of the
	// node's limits: a source's own limit.
	LimitUp int64 `json:"limit_up,omitempty"`
}

// EnablePlacement makes the daemon keep the owner's repository placed on
// peers: a pass after every backup (asked through the API) and a life
// cycle round (placement, lease renewal, audits, repair) every ten minutes.
// A node no owner certified yet does nothing until one does. After each
// round, what every host keeps for this owner goes into hosting's ledger,
// where the reciprocity rule weighs it (hosted may be nil).
func EnablePlacement(d *Daemon, hosted func() *hosting.Server) {
	var (
		mu    sync.Mutex
		peers *peerstore.Peers
	)
	get := func(ctx context.Context) (*peerstore.Peers, error) {
		mu.Lock()
		defer mu.Unlock()
		if peers != nil {
			return peers, nil
		}
		p, err := peerstore.Open(ctx, peerstore.Options{Home: d.Home(), Node: d.Node(), Logger: d.log})
		if err != nil {
			return nil, err
		}
		peers = p
		return p, nil
	}
	localRepo := func() store.Reader {
		dir := d.Home().RepoDir()
		if _, err := os.Stat(filepath.Join(dir, store.ConfigName)); err != nil {
			return nil
		}
		st, err := local.Open(dir)
		if err != nil {
			return nil
		}
		return st
	}
	d.OnStop(func() error {
		mu.Lock()
		defer mu.Unlock()
		if peers != nil {
			return peers.Close()
		}
		return nil
	})
	d.AddService("placement", func(ctx context.Context) error {
		t := time.NewTicker(maintainEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			p, err := get(ctx)
			if err != nil {
				d.log.Debug("placement idle", "err", err)
				continue
			}
			if err := p.Maintain(ctx, localRepo()); err != nil && ctx.Err() == nil {
				d.log.Warn("placement round", "err", err)
			}
			recordHeldBy(ctx, p, hosted)
		}
	})
	// Announce on the DHT the owners whose data this node keeps, so that an
	// owner recovering with nothing but the recovery code finds it.
	d.AddService("provide-owners", func(ctx context.Context) error {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			if hosted != nil && hosted() != nil {
				if owners, err := hosted().Owners(ctx); err == nil {
					for _, o := range owners {
						d.Node().ProvideOwner(o)
					}
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	})
	d.Handle("POST "+PathPlacementSync, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req SyncRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		var red placement.Redundancy
		if req.Redundancy != "" {
			var err error
			if red, err = placement.ParseRedundancy(req.Redundancy); err != nil {
				writeErr(w, http.StatusBadRequest, err)
				return
			}
		}
		p, err := get(r.Context())
		if err != nil {
			writeErr(w, http.StatusConflict, err)
			return
		}
		sum, err := p.Sync(peerstore.WithUploadLimit(r.Context(), req.LimitUp), localRepo(), placement.SyncOptions{Redundancy: red, HostList: req.HostList})
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		writeJSONResp(w, sum)
	}))
	d.Handle("POST "+PathPlacementReconcile, handleReconcile(get, localRepo))
	d.Handle("POST "+PathPlacementMaintain, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := get(r.Context())
		if err != nil {
			writeErr(w, http.StatusConflict, err)
			return
		}
		err = p.Maintain(r.Context(), localRepo())
		recordHeldBy(r.Context(), p, hosted)
		st, serr := p.Engine().Status(r.Context(), 30*24*time.Hour)
		if err = errors.Join(err, serr); err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		writeJSONResp(w, st)
	}))
}

// recordHeldBy tells hosting how much each host keeps for this owner.
func recordHeldBy(ctx context.Context, p *peerstore.Peers, hosted func() *hosting.Server) {
	if hosted == nil || hosted() == nil {
		return
	}
	st, err := p.Engine().Status(ctx, 0)
	if err != nil {
		return
	}
	for _, hs := range st.Hosts {
		if id, err := peer.Decode(hs.ID); err == nil {
			_ = hosted().RecordHeldBy(ctx, id, hs.Bytes)
		}
	}
}

func handleReconcile(get func(context.Context) (*peerstore.Peers, error), localRepo func() store.Reader) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req ReconcileRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&req); err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		src := localRepo()
		if src == nil {
			writeErr(w, http.StatusConflict, errors.New("no local repository"))
			return
		}
		p, err := get(r.Context())
		if err != nil {
			writeErr(w, http.StatusConflict, err)
			return
		}
		packs := make(map[string]bool, len(req.Packs))
		for _, n := range req.Packs {
			packs[n] = true
		}
		sum, err := p.Reconcile(r.Context(), peerstore.KeepLocal(r.Context(), src, packs))
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		writeJSONResp(w, sum)
	}
}

func writeJSONResp(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
