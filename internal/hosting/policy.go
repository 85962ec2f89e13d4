package hosting

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/cairn-backup/cairn/internal/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The admission rule (DESIGN §8). A put or offer of n bytes from peer P is
// accepted when:
//
//   - P is a friend, or P is a community or unknown peer and community
//     mode is on; a blocked peer is refused everything;
//   - all hosted bytes plus uploads in progress plus n stay within the
//     offer, and n fits in the free space of the disk;
//   - the bytes held for P plus P's uploads in progress plus n stay within
//     P's quota: its override if the policy gives one, otherwise
//     max(FreeAllowance, Ratio × bytes P keeps for us).

// OwnerPolicy may be implemented by a PeerPolicy to trust owners rather
// than nodes: a node the host does not know, whose request proves it acts
// for an owner one of whose nodes is a friend, is that owner's new machine
// (after a recovery, say) and is trusted as a friend too.
type OwnerPolicy interface {
	TrustOwner(ownerID string) Trust
}

// checkTrust refuses peers the host does not store for. owner is the owner
// the request proved it acts for.
func (s *Server) checkTrust(p peer.ID, owner string, st Settings) error {
	t := s.policy.Trust(p)
	if op, ok := s.policy.(OwnerPolicy); ok && t == TrustUnknown && owner != "" && op.TrustOwner(owner) == TrustFriend {
		t = TrustFriend
	}
	switch t {
	case TrustFriend:
		return nil
	case TrustBlocked:
		return fmt.Errorf("%w: peer is blocked", wire.ErrNotTrusted)
	default:
		if !st.Community {
			return fmt.Errorf("%w: this node stores for friends only", wire.ErrNotTrusted)
		}
		return nil
	}
}

// checkLease refuses leases that end in the past or too far ahead.
func checkLease(until, now time.Time, st Settings) error {
	if !until.After(now) {
		return fmt.Errorf("%w: lease ends in the past", wire.ErrBadRequest)
	}
	// A minute of grace for clocks that differ a little.
	if until.Sub(now) > st.MaxLease+time.Minute {
		return fmt.Errorf("%w: at most %s", wire.ErrLeaseTooLong, st.MaxLease)
	}
	return nil
}

// room is what peer p may still store. Called with s.mu held.
type room struct {
	offer, disk, quota int64
}

func (r room) min() int64 { return max(0, min(r.offer, r.disk, r.quota)) }

// check refuses n bytes that do not fit, naming the tightest limit.
func (r room) check(n int64) error {
	switch {
	case n > r.offer:
		return fmt.Errorf("%w: the offer has %d bytes left", wire.ErrDiskFull, max(0, r.offer))
	case n > r.disk:
		return fmt.Errorf("%w: the disk has %d bytes left", wire.ErrDiskFull, max(0, r.disk))
	case n > r.quota:
		return fmt.Errorf("%w: %d bytes left for this peer", wire.ErrQuota, max(0, r.quota))
	}
	return nil
}

func (s *Server) roomLocked(ctx context.Context, p peer.ID, st Settings) (room, error) {
	var r room
	total, err := s.db.heldFor(ctx, "")
	if err != nil {
		return r, err
	}
	r.offer = st.OfferBytes - total - s.pendAll
	free, err := s.free()
	if err != nil {
		return r, err
	}
	r.disk = free - s.pendAll
	held, err := s.db.heldFor(ctx, p)
	if err != nil {
		return r, err
	}
	limit, ok := s.policy.QuotaOverride(p)
	if !ok {
		by, err := s.db.heldBy(ctx, p)
		if err != nil {
			return r, err
		}
		limit = st.FreeAllowance
		if byRatio := float64(by) * st.Ratio; byRatio > float64(limit) {
			limit = int64(min(byRatio, math.MaxInt64/2))
		}
	}
	r.quota = limit - held - s.pending[p]
	return r, nil
}

// offer answers "may p store n more bytes?" without reserving anything.
func (s *Server) offer(ctx context.Context, p peer.ID, owner string, n int64) (room, error) {
	st := s.Settings()
	if err := s.checkTrust(p, owner, st); err != nil {
		return room{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomLocked(ctx, p, st)
	if err != nil {
		return r, err
	}
	return r, r.check(n)
}

// reserve admits an upload of n bytes from p and holds the room for it
// until release.
func (s *Server) reserve(ctx context.Context, p peer.ID, owner string, n int64) (release func(), err error) {
	st := s.Settings()
	if err := s.checkTrust(p, owner, st); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.roomLocked(ctx, p, st)
	if err != nil {
		return nil, err
	}
	if err := r.check(n); err != nil {
		return nil, err
	}
	s.pending[p] += n
	s.pendAll += n
	done := false
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if done {
			return
		}
		done = true
		s.pending[p] -= n
		s.pendAll -= n
		if s.pending[p] == 0 {
			delete(s.pending, p)
		}
	}, nil
}
