package placement

import (
	"context"
	"sort"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

// Status is where placement stands, from the record alone (no network).
type Status struct {
	Packs          Counts
	MetaObjects    int   // metadata objects kept on every host
	MetaIncomplete int   // of them, not on every known live host
	StoredBytes    int64 // bytes held by all hosts together
	Hosts          []HostStatus
	// Expiring lists the leases that end within the asked window, soonest first.
	Expiring []Lease
}

// HostStatus is what one host holds and how it did in audits.
type HostStatus struct {
	ID           string
	Pieces       int
	Bytes        int64
	Bad          int // pieces that failed an audit, to replace
	AuditsOK     int
	AuditsFailed int
	Reputation   float64 // in (0, 1]; 0.5 for a host never audited
	LastSeen     time.Time
	Gone         bool // unseen for longer than the grace period
}

// Lease is one copy of one piece on one host.
type Lease struct {
	Host   string
	Handle store.Handle
	Until  time.Time
}

// stateOfLocked classifies one pack: 0 placed, 1 degraded, 2 missing.
func (e *Engine) stateOfLocked(o *object, online map[string]bool) int {
	good := 0
	full := true
	for i := 0; i < o.pieceCount(); i++ {
		n := 0
		if i < len(o.pieces) && o.pieces[i] != nil {
			n = e.healthyLocked(o.pieces[i], online)
		}
		if n > 0 {
			good++
		}
		if n < o.want() {
			full = false
		}
	}
	switch {
	case good < o.red.Needed():
		return 2
	case !full:
		return 1
	}
	return 0
}

// countsLocked counts the packs among hs (all packs when hs is nil).
func (e *Engine) countsLocked(hs []store.Handle, online map[string]bool) Counts {
	var c Counts
	add := func(o *object) {
		switch e.stateOfLocked(o, online) {
		case 0:
			c.Placed++
		case 1:
			c.Degraded++
		default:
			c.Missing++
		}
	}
	if hs == nil {
		for _, o := range e.objs {
			if !o.forgotten && !o.meta() {
				add(o)
			}
		}
		return c
	}
	for _, h := range hs {
		if o := e.objs[h]; o != nil && !o.forgotten && !o.meta() {
			add(o)
		} else {
			c.Missing++
		}
	}
	return c
}

// metaIncompleteLocked counts metadata objects missing on a live host
// (online now, or known and not gone).
func (e *Engine) metaIncompleteLocked(online map[string]bool) int {
	var live []string
	for id := range e.hosts {
		if !e.goneLocked(id, online) {
			live = append(live, id)
		}
	}
	n := 0
	for _, o := range e.objs {
		if o.forgotten || !o.meta() {
			continue
		}
		if len(o.pieces) == 0 || o.pieces[0] == nil {
			n++
			continue
		}
		for _, id := range live {
			if r := o.pieces[0].at.get(id); r == nil || r.state != stateOK {
				n++
				break
			}
		}
	}
	return n
}

// Status summarises the record: packs by state, metadata, bytes and
// audit record per host, and the leases that end within expiring.
func (e *Engine) Status(ctx context.Context, expiring time.Duration) (Status, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var s Status
	s.Packs = e.countsLocked(nil, nil)
	s.MetaIncomplete = e.metaIncompleteLocked(nil)
	per := map[string]*HostStatus{}
	for id, h := range e.hosts {
		per[id] = &HostStatus{ID: id, AuditsOK: h.auditsOK, AuditsFailed: h.auditsFailed, Reputation: h.reputation(),
			LastSeen: h.lastSeen, Gone: e.goneLocked(id, nil)}
	}
	limit := e.now().Add(expiring)
	for _, o := range e.objs {
		if o.forgotten {
			continue
		}
		if o.meta() {
			s.MetaObjects++
		}
		for _, p := range o.pieces {
			if p == nil {
				continue
			}
			for _, r := range p.at {
				id := r.host
				hs := per[id]
				if hs == nil {
					hs = &HostStatus{ID: id, Reputation: 0.5}
					per[id] = hs
				}
				if r.state == stateDropped {
					continue
				}
				hs.Pieces++
				hs.Bytes += p.size
				s.StoredBytes += p.size
				if r.state == stateBad {
					hs.Bad++
				}
				if r.state == stateOK && r.until.Before(limit) {
					s.Expiring = append(s.Expiring, Lease{Host: id, Handle: p.h, Until: r.until})
				}
			}
		}
	}
	for _, hs := range per {
		s.Hosts = append(s.Hosts, *hs)
	}
	sort.Slice(s.Hosts, func(a, b int) bool { return s.Hosts[a].ID < s.Hosts[b].ID })
	sort.Slice(s.Expiring, func(a, b int) bool { return s.Expiring[a].Until.Before(s.Expiring[b].Until) })
	return s, ctx.Err()
}

// CountsOf classifies the given packs (a source's, say): placed, degraded,
// or missing (including packs placement has never seen).
func (e *Engine) CountsOf(packs []store.Handle) Counts {
	e.mu.Lock()
	defer e.mu.Unlock()
	if packs == nil {
		packs = []store.Handle{}
	}
	return e.countsLocked(packs, nil)
}
