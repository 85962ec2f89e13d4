package hostclient

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
)

// AuditProofs asks p for the given leaves of h with their Merkle paths and
// returns them unchecked, for callers that keep the roots themselves and
// choose the challenges (the placement engine). At most
// wire.MaxAuditLeaves leaves.
func (c *Client) AuditProofs(ctx context.Context, p peer.ID, h store.Handle, leaves []uint64) ([]wire.AuditLeaf, error) {
	if err := h.Valid(); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if len(leaves) == 0 || len(leaves) > wire.MaxAuditLeaves {
		return nil, fmt.Errorf("audit %s: %d leaves asked, want 1..%d", h, len(leaves), wire.MaxAuditLeaves)
	}
	var resp wire.AuditResp
	if err := c.roundTrip(ctx, p, wire.ProtoAudit, &wire.AuditReq{Object: wire.ObjectOf(h), Leaves: leaves}, &resp); err != nil {
		return nil, err
	}
	if err := refused(wire.ProtoAudit, p, resp.Code, resp.Message); err != nil {
		return nil, fmt.Errorf("audit %s: %w", h, err)
	}
	return resp.Leaves, nil
}
