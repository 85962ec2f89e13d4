// Package peerstore joins the owner's repository to the peer network. It
// adapts the storage protocol's client (package hostclient) to the
// placement engine's Host, turns the node's peer table into ranked
// placement candidates, and runs the engine's sync, lease renewal, audits
// and repair for the node.
package peerstore

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/store"
)

// host is one peer seen through the storage protocol.
type host struct {
	c  *hostclient.Client
	id peer.ID
	p  *Peers // for the bandwidth limits
}

var _ placement.Host = (*host)(nil)

func (h *host) ID() string { return h.id.String() }

func (h *host) Get(ctx context.Context, hd store.Handle, offset, length int64) (io.ReadCloser, error) {
	rc, err := h.c.Get(ctx, h.id, hd, offset, length)
	if err != nil {
		return nil, err
	}
	return readCloser{h.p.shaper().Reader(ctx, h.ID(), rc), rc}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func entry(hd hostclient.Held) placement.Entry {
	return placement.Entry{Handle: hd.Handle, Size: hd.Size, SHA256: hd.Hash, Until: hd.Until}
}

func (h *host) Has(ctx context.Context, hs []store.Handle) ([]placement.Entry, error) {
	m, err := h.c.Has(ctx, h.id, hs)
	if err != nil {
		return nil, err
	}
	out := make([]placement.Entry, 0, len(m))
	for _, hd := range m {
		out = append(out, entry(hd))
	}
	return out, nil
}

func (h *host) List(ctx context.Context, t store.Type, fn func(placement.Entry) error) error {
	return h.c.List(ctx, h.id, t, func(hd hostclient.Held) error { return fn(entry(hd)) })
}

func (h *host) Put(ctx context.Context, hd store.Handle, size int64, sum [32]byte, until time.Time, r io.Reader) error {
	r = h.p.shaper().UploadReader(ctx, h.ID(), r, uploadLimit(ctx)...)
	_, err := h.c.Put(ctx, h.id, hostclient.Object{Handle: hd, Size: size, Hash: crypto.ID(sum), Until: until}, r)
	return err
}

func (h *host) Renew(ctx context.Context, hs []store.Handle, until time.Time) ([]store.Handle, error) {
	return h.c.Renew(ctx, h.id, hs, until)
}

func (h *host) Delete(ctx context.Context, hs []store.Handle) error {
	_, err := h.c.Delete(ctx, h.id, hs)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

func (h *host) Audit(ctx context.Context, hd store.Handle, leaves []uint64) ([]placement.LeafProof, error) {
	ls, err := h.c.AuditProofs(ctx, h.id, hd, leaves)
	if err != nil {
		return nil, err
	}
	out := make([]placement.LeafProof, len(ls))
	for i, l := range ls {
		out[i] = placement.LeafProof{Index: l.Index, Data: l.Data, Path: l.Path}
	}
	return out, nil
}
