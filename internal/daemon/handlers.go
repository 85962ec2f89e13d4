package daemon

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

func (d *Daemon) routes() {
	d.mux.HandleFunc("GET "+api.PathHealth, func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	d.mux.HandleFunc("GET "+api.PathID, d.handleID)
	d.mux.HandleFunc("GET "+api.PathPeers, d.handlePeers)
	d.mux.HandleFunc("POST "+api.PathInvite, d.handleInvite)
	d.mux.HandleFunc("POST "+api.PathJoin, d.handleJoin)
	d.mux.HandleFunc("POST "+api.PathAdd, d.handleAdd)
	d.mux.HandleFunc("POST "+api.PathRemove, d.handlePeerOp(func(_ context.Context, id peer.ID, _ api.PeerRequest) error {
		return d.node.RemovePeer(id)
	}))
	d.mux.HandleFunc("POST "+api.PathBlock, d.handlePeerOp(func(_ context.Context, id peer.ID, _ api.PeerRequest) error {
		return d.node.BlockPeer(id)
	}))
	d.mux.HandleFunc("POST "+api.PathName, d.handlePeerOp(func(_ context.Context, id peer.ID, r api.PeerRequest) error {
		return d.node.NamePeer(id, r.Name)
	}))
	d.mux.HandleFunc("POST "+api.PathConnect, d.handlePeerOp(func(ctx context.Context, id peer.ID, _ api.PeerRequest) error {
		p, ok := d.node.Peers().Get(id)
		if !ok {
			return p2p.ErrUnknownPeer
		}
		return d.node.Connect(ctx, p.AddrInfo(), 30*time.Second)
	}))
	d.mux.HandleFunc("GET "+api.PathOffer, d.handleGetOffer)
	d.mux.HandleFunc("POST "+api.PathOffer, d.handleSetOffer)
}

func (d *Daemon) handleID(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, d.ID())
}

// ID returns the node's identity as the API reports it.
func (d *Daemon) ID() api.ID {
	v := api.ID{NodeID: d.node.ID().String(), OwnerID: d.node.Owner().ID, Addrs: []string{}}
	for _, a := range d.node.Addrs() {
		v.Addrs = append(v.Addrs, a.String())
	}
	return v
}

func (d *Daemon) handlePeers(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, d.PeerRows(r.Context()))
}

// PeerRows returns the peer table as the API reports it, with the
// ledger's numbers when a ledger is set.
func (d *Daemon) PeerRows(ctx context.Context) []api.Peer {
	var held map[peer.ID]Held
	if d.ledger != nil {
		var err error
		if held, err = d.ledger(ctx); err != nil {
			d.log.Warn("ledger not read", "err", err)
		}
	}
	out := []api.Peer{}
	listed := map[peer.ID]bool{}
	for _, p := range d.node.PeerStates() {
		out = append(out, toAPIPeer(p, held[p.ID]))
		listed[p.ID] = true
	}
	// Peers that only the ledger knows (community members that stored here).
	for id, h := range held {
		if !listed[id] {
			p := p2p.PeerState{Peer: p2p.Peer{ID: id, Trust: d.node.Peers().Trust(id)},
				Connected: d.node.Host().Network().Connectedness(id) == network.Connected}
			out = append(out, toAPIPeer(p, h))
		}
	}
	return out
}

func toAPIPeer(p p2p.PeerState, h Held) api.Peer {
	addrs := p.Addrs
	if addrs == nil {
		addrs = []string{}
	}
	return api.Peer{
		NodeID: p.ID.String(), Name: p.Name, OwnerID: p.OwnerID, Addrs: addrs,
		LAN: p.LAN, Connected: p.Connected, LastSeen: p.LastSeen, RTTMillis: p.RTTMillis,
		OfferBytes: p.OfferBytes, FreeBytes: p.FreeBytes, Trust: string(p.Trust),
		QuotaBytes: p.Quota, HeldForThem: h.ForThem, HeldByThem: h.ByThem,
	}
}

func (d *Daemon) peerRow(id peer.ID) api.Peer {
	for _, p := range d.node.PeerStates() {
		if p.ID == id {
			return toAPIPeer(p, Held{})
		}
	}
	return api.Peer{NodeID: id.String()}
}

func (d *Daemon) handleInvite(w http.ResponseWriter, r *http.Request) {
	var req api.InviteRequest
	if err := api.ReadJSON(w, r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	create := d.node.CreateInvite
	if req.Short {
		create = d.node.CreateShortInvite
	}
	code, exp, err := create(time.Duration(req.TTLSeconds) * time.Second)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, "refused", err.Error())
		return
	}
	api.WriteJSON(w, http.StatusOK, api.Invite{Code: code, Expires: exp.UTC()})
}

func (d *Daemon) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req api.JoinRequest
	if err := api.ReadJSON(w, r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	p, err := d.node.Join(r.Context(), req.Code)
	if err != nil {
		status, code := http.StatusBadGateway, "internal"
		switch {
		case errors.Is(err, p2p.ErrBadInvite):
			status, code = http.StatusBadRequest, "bad_request"
		case errors.Is(err, p2p.ErrInviteRefused), errors.Is(err, p2p.ErrPairingFailed):
			status, code = http.StatusForbidden, "refused"
		case errors.Is(err, p2p.ErrInviterNotFound):
			status, code = http.StatusNotFound, "not_found"
		}
		api.WriteError(w, status, code, err.Error())
		return
	}
	api.WriteJSON(w, http.StatusOK, d.peerRow(p.ID))
}

func (d *Daemon) handleAdd(w http.ResponseWriter, r *http.Request) {
	var req api.AddRequest
	if err := api.ReadJSON(w, r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	p, err := d.node.AddPeer(r.Context(), req.Addr)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	api.WriteJSON(w, http.StatusOK, d.peerRow(p.ID))
}

func (d *Daemon) handlePeerOp(op func(context.Context, peer.ID, api.PeerRequest) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.PeerRequest
		if err := api.ReadJSON(w, r, &req); err != nil {
			api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		id, err := peer.Decode(req.NodeID)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, "bad_request", "invalid node ID: "+err.Error())
			return
		}
		if err := op(r.Context(), id, req); err != nil {
			status, code := http.StatusBadRequest, "bad_request"
			if errors.Is(err, p2p.ErrUnknownPeer) {
				status, code = http.StatusNotFound, "not_found"
			}
			api.WriteError(w, status, code, err.Error())
			return
		}
		api.WriteJSON(w, http.StatusOK, d.peerRow(id))
	}
}

func (d *Daemon) offer() api.Offer {
	offer, free := d.node.OfferBytes()
	s := d.node.Settings()
	return api.Offer{OfferBytes: offer, OfferPercent: s.OfferPercent, FreeBytes: free, Community: s.Community}
}

func (d *Daemon) handleGetOffer(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, d.offer())
}

func (d *Daemon) handleSetOffer(w http.ResponseWriter, r *http.Request) {
	var req api.OfferRequest
	if err := api.ReadJSON(w, r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	if req.NodeID != "" {
		id, err := peer.Decode(req.NodeID)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, "bad_request", "invalid node ID: "+err.Error())
			return
		}
		bytes, pct, err := p2p.ParseSize(req.Size)
		if err == nil && pct > 0 {
			err = errors.New("a friend's quota is a size, not a percentage")
		}
		if err == nil {
			err = d.node.SetQuota(id, bytes)
		}
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, p2p.ErrUnknownPeer) {
				status = http.StatusNotFound
			}
			api.WriteError(w, status, "bad_request", err.Error())
			return
		}
		api.WriteJSON(w, http.StatusOK, d.offer())
		return
	}
	set, err := d.node.UpdateSettings(func(s *p2p.Settings) error {
		if req.Size != "" {
			bytes, pct, err := p2p.ParseSize(req.Size)
			if err != nil {
				return err
			}
			s.OfferBytes, s.OfferPercent = bytes, pct
		}
		if req.Community != nil {
			s.Community = *req.Community
		}
		return nil
	})
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	for _, fn := range d.onSet {
		fn(set)
	}
	api.WriteJSON(w, http.StatusOK, d.offer())
}
