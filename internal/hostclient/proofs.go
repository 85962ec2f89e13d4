package hostclient

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
)

// LeafProof is a host's answer to one audit challenge: the bytes of leaf
// Index of the object's Merkle tree (see wire.MerkleRoot) and the sibling
// hashes from the leaf up to the root. Check it with wire.VerifyLeaf.
type LeafProof struct {
	Index uint64
	Data  []byte
	Path  [][]byte
}

// AuditProofs asks p for the given leaves of h with their Merkle paths and
// returns them unchecked, for callers that keep the roots themselves and
// choose the challenges (the placement engine). At most
// wire.MaxAuditLeaves leaves. A host that does not hold h gives an error
// wrapping store.ErrNotFound.
func (c *Client) AuditProofs(ctx context.Context, p peer.ID, h store.Handle, leaves []uint64) ([]LeafProof, error) {
	if err := h.Valid(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if len(leaves) == 0 || len(leaves) > wire.MaxAuditLeaves {
		return nil, fmt.Errorf("audit %s: %d leaves asked, want 1..%d", h, len(leaves), wire.MaxAuditLeaves)
	}
	st, err := c.open(ctx, p, wire.ProtoAudit, &wire.AuditReq{Object: wire.ObjectOf(h), Leaves: leaves})
	if err != nil {
		return nil, err
	}
	// The host reads the whole object to answer: give it more time than a
	// plain exchange.
	if err := st.SetDeadline(time.Now().Add(3 * c.opts.HeaderTimeout)); err != nil {
		st.reset()
		return nil, fmt.Errorf("audit %s: %w", h, err)
	}
	var resp wire.AuditResp
	if err := c.codec.ReadMsg(st, &resp); err != nil {
		st.reset()
		return nil, c.streamErr(ctx, wire.ProtoAudit, p, "read answer", err)
	}
	st.close()
	if err := refused(wire.ProtoAudit, p, resp.Code, resp.Message); err != nil {
		return nil, fmt.Errorf("audit %s: %w", h, err)
	}
	out := make([]LeafProof, len(resp.Leaves))
	for i, l := range resp.Leaves {
		out[i] = LeafProof{Index: l.Index, Data: l.Data, Path: l.Path}
	}
	return out, nil
}
