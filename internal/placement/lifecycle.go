package placement

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
)

// maxBatch is the most handles one renew, has or delete request carries.
const maxBatch = wire.MaxObjects

// sweepLocked marks the copies on hosts gone past the grace period as
// dropped: they no longer count, and are deleted if the host returns.
func (e *Engine) sweepLocked(ctx context.Context, online map[string]bool, st *syncState) error {
	return e.db.batch(ctx, func() error { return e.sweepBatchLocked(ctx, online, st) })
}

func (e *Engine) sweepBatchLocked(ctx context.Context, online map[string]bool, st *syncState) error {
	for p, r := range allCopies(e.objs) {
		id := r.host
		if r.state == stateOK && e.goneLocked(id, online) {
			r.state = stateDropped
			st.sum.Dropped++
			if err := e.db.savePlacement(ctx, p, id, r); err != nil {
				return fmt.Errorf("record placement: %w", err)
			}
		}
	}
	return nil
}

// deleteForgotten deletes, on the online hosts, the copies of forgotten
// objects and the bad or dropped copies, and forgets objects left without
// copies.
func (e *Engine) deleteForgotten(ctx context.Context, hosts []Candidate, st *syncState) error {
	type del struct {
		p     *piece
		whole bool // forgotten object: remove the record too
	}
	e.mu.Lock()
	online := onlineSet(hosts)
	if err := e.sweepLocked(ctx, online, st); err != nil {
		e.mu.Unlock()
		return err
	}
	per := map[string][]del{}
	for p, r := range allCopies(e.objs) {
		id := r.host
		if !online[id] {
			continue
		}
		if o := p.obj; o.forgotten || r.state == stateBad || r.state == stateDropped {
			per[id] = append(per[id], del{p: p, whole: o.forgotten})
		}
	}
	e.mu.Unlock()
	byID := map[string]Candidate{}
	for _, c := range hosts {
		byID[c.ID()] = c
	}
	var wg sync.WaitGroup
	for id, dels := range per {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(dels) > 0 {
				n := min(len(dels), maxBatch)
				batch := dels[:n]
				dels = dels[n:]
				hs := make([]store.Handle, len(batch))
				for i, d := range batch {
					hs[i] = d.p.h
				}
				dctx, cancel := context.WithTimeout(ctx, e.opts.BaseTimeout)
				err := byID[id].Host.Delete(dctx, hs)
				cancel()
				if err != nil {
					st.fail(fmt.Errorf("delete %d objects on %s: %w", len(hs), id, err))
					e.log.Info("delete failed", "host", id, "objects", len(hs), "err", err)
					continue
				}
				e.mu.Lock()
				err = e.db.batch(ctx, func() error {
					for _, d := range batch {
						st.sum.Deleted++
						if d.whole {
							e.delCopyLocked(d.p, id)
							if err := e.db.deletePlacement(ctx, d.p, id); err != nil {
								return err
							}
						} else if r := d.p.at.get(id); r != nil {
							e.markDeletedLocked(d.p, r)
							if err := e.db.savePlacement(ctx, d.p, id, r); err != nil {
								return err
							}
						}
					}
					return nil
				})
				e.mu.Unlock()
				if err != nil {
					e.log.Error("record deletion", "host", id, "err", err)
				}
			}
		}()
	}
	wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	for h, o := range e.objs {
		if !o.forgotten {
			continue
		}
		left := 0
		for _, p := range o.pieces {
			if p == nil {
				continue
			}
			for _, r := range p.at {
				id := r.host
				if r.state == stateDeleted || e.goneLocked(id, online) {
					continue // nothing to delete, or the host's lease expiry will
				}
				left++
			}
		}
		if left > 0 {
			continue
		}
		if err := e.db.deleteObject(ctx, o); err != nil {
			return fmt.Errorf("forget %s: %w", h, err)
		}
		for _, p := range o.pieces {
			if p == nil {
				continue
			}
			for _, r := range p.at {
				if r.state != stateDeleted {
					e.held[r.host] -= p.size
				}
			}
		}
		delete(e.objs, h)
	}
	return nil
}

// Forget deletes objects everywhere (after prune deleted them locally):
// every copy on the online hosts now, the others when their hosts are
// next online (any later Sync, Repair or Forget), and the record once no
// copy is left. Unknown handles are ignored.
func (e *Engine) Forget(ctx context.Context, hosts []Candidate, hs []store.Handle) (Summary, error) {
	st := &syncState{}
	e.mu.Lock()
	for _, h := range hs {
		o := e.objs[h]
		if o == nil || o.forgotten {
			continue
		}
		o.forgotten = true
		if err := e.db.saveObject(ctx, o); err != nil {
			e.mu.Unlock()
			return st.sum, fmt.Errorf("forget %s: %w", h, err)
		}
	}
	err := e.seenLocked(ctx, hosts)
	e.mu.Unlock()
	if err != nil {
		return st.sum, err
	}
	err = e.deleteForgotten(ctx, hosts, st)
	return st.sum, err
}

// Repair replaces what no longer counts: copies that failed an audit or
// that a host lost are deleted there and placed on another host; copies on
// hosts gone for longer than the grace period are placed elsewhere. Pieces
// come from the local repository src when it has the pack (src may be
// nil), else they are rebuilt from the healthy copies or shards. It also
// completes degraded placements, like Sync, but adds nothing new.
func (e *Engine) Repair(ctx context.Context, src store.Reader, hosts []Candidate) (Summary, error) {
	st := &syncState{}
	e.mu.Lock()
	err := e.seenLocked(ctx, hosts)
	e.mu.Unlock()
	if err != nil {
		return st.sum, err
	}
	if err := e.adoptUnlisted(ctx, hosts); err != nil {
		return st.sum, fmt.Errorf("repair: %w", err)
	}
	if err := e.deleteForgotten(ctx, hosts, st); err != nil {
		return st.sum, err
	}
	if err := e.fillAll(ctx, src, nil, hosts, st); err != nil {
		return st.sum, err
	}
	e.mu.Lock()
	online := onlineSet(hosts)
	st.sum.Counts = e.countsLocked(nil, online)
	st.sum.MetaIncomplete = e.metaIncompleteLocked(online)
	e.mu.Unlock()
	return st.sum, nil
}

// RenewReport says what RenewLeases did.
type RenewReport struct {
	Renewed int // copies whose lease was extended
	Lost    int // copies the host no longer held (marked for repair)
	Failed  int // copies on hosts that did not answer
}

// RenewLeases extends, to now + the lease (or the host's MaxLease if
// shorter), every lease on an online host
// that ends within the given window. A host that no longer holds a copy has
// it marked bad (Repair replaces it) and the loss counts against it like a
// failed audit.
func (e *Engine) RenewLeases(ctx context.Context, hosts []Candidate, within time.Duration) (RenewReport, error) {
	var rep RenewReport
	e.mu.Lock()
	if err := e.seenLocked(ctx, hosts); err != nil {
		e.mu.Unlock()
		return rep, err
	}
	online := onlineSet(hosts)
	limit := e.now().Add(within)
	per := map[string][]*piece{}
	for p, r := range allCopies(e.objs) {
		if id := r.host; !p.obj.forgotten && online[id] && r.state == stateOK && r.until.Before(limit) {
			per[id] = append(per[id], p)
		}
	}
	e.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []error
	for _, c := range hosts {
		ps := per[c.ID()]
		if len(ps) == 0 {
			continue
		}
		e.mu.Lock()
		until := e.now().Add(e.leaseFor(c))
		e.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(ps) > 0 {
				n := min(len(ps), maxBatch)
				batch := ps[:n]
				ps = ps[n:]
				hs := make([]store.Handle, n)
				for i, p := range batch {
					hs[i] = p.h
				}
				rctx, cancel := context.WithTimeout(ctx, e.opts.BaseTimeout)
				missing, err := c.Host.Renew(rctx, hs, until)
				cancel()
				mu.Lock()
				if err != nil {
					rep.Failed += n
					e.log.Info("renew failed", "host", c.ID(), "objects", n, "err", err)
					mu.Unlock()
					continue
				}
				lost := map[store.Handle]bool{}
				for _, h := range missing {
					lost[h] = true
				}
				rep.Renewed += n - len(lost)
				rep.Lost += len(lost)
				mu.Unlock()
				e.mu.Lock()
				err = e.db.batch(ctx, func() error {
					for _, p := range batch {
						r := p.at.get(c.ID())
						if r == nil {
							continue
						}
						if lost[p.h] {
							r.state = stateBad
							if h := e.hosts[c.ID()]; h != nil {
								h.auditsFailed++
								if err := e.db.saveHost(ctx, h); err != nil {
									return err
								}
							}
							if err := e.db.addAudit(ctx, e.now(), c.ID(), p, false, "lost at renewal"); err != nil {
								return err
							}
						} else if until.After(r.until) {
							r.until = until
						}
						if err := e.db.savePlacement(ctx, p, c.ID(), r); err != nil {
							return err
						}
					}
					return nil
				})
				e.mu.Unlock()
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return rep, fmt.Errorf("record renewed leases: %w", errors.Join(errs...))
	}
	return rep, ctx.Err()
}

// AuditReport says what Audit found.
type AuditReport struct {
	Checked int
	Passed  int
	Failed  int // wrong or missing data: the copy is marked for repair
	Errors  int // the host did not answer (counts against its reputation, copy kept)
}

// Audit challenges up to n random copies on online hosts, each on
// AuditLeaves random leaves, and checks the proofs against the Merkle
// roots recorded at upload. A copy whose root is not known (after a
// rebuild) is read whole instead, verified and its root recorded. Each
// result is recorded; the audit history is the host's reputation.
func (e *Engine) Audit(ctx context.Context, hosts []Candidate, n int) (AuditReport, error) {
	var rep AuditReport
	type pick struct {
		p    *piece
		host Candidate
	}
	e.mu.Lock()
	if err := e.seenLocked(ctx, hosts); err != nil {
		e.mu.Unlock()
		return rep, err
	}
	byID := map[string]Candidate{}
	for _, c := range hosts {
		if c.Info.Online && c.Info.Trust != TrustBlocked {
			byID[c.ID()] = c
		}
	}
	var all []pick
	for p, r := range allCopies(e.objs) {
		if c, ok := byID[r.host]; ok && !p.obj.forgotten && r.state == stateOK {
			all = append(all, pick{p, c})
		}
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].p.h != all[b].p.h {
			return all[a].p.h.String() < all[b].p.h.String()
		}
		return all[a].host.ID() < all[b].host.ID()
	})
	e.rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	if n < len(all) {
		all = all[:n]
	}
	leaves := make([][]uint64, len(all))
	for i, pk := range all {
		if pk.p.rootKnown {
			leaves[i] = e.pickLeavesLocked(pk.p.size)
		}
	}
	e.mu.Unlock()

	// Hosts in parallel, each host's challenges one after the other: a
	// host that does not answer delays only its own audits.
	perHost := map[string][]int{}
	for i, pk := range all {
		perHost[pk.host.ID()] = append(perHost[pk.host.ID()], i)
	}
	var mu sync.Mutex // guards rep and dbErr
	var dbErr error
	var wg sync.WaitGroup
	for _, idxs := range perHost {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, i := range idxs {
				if ctx.Err() != nil {
					return
				}
				pk := all[i]
				failed, err := e.auditOne(ctx, pk.p, pk.host, leaves[i])
				ok := err == nil
				msg := "ok"
				mu.Lock()
				rep.Checked++
				switch {
				case ok:
					rep.Passed++
				case failed:
					rep.Failed++
					msg = err.Error()
					e.log.Warn("audit failed", "host", pk.host.ID(), "piece", pk.p.h.String(), "err", err)
				default:
					rep.Errors++
					msg = err.Error()
					e.log.Info("audit not answered", "host", pk.host.ID(), "piece", pk.p.h.String(), "err", err)
				}
				mu.Unlock()
				e.mu.Lock()
				h := e.hosts[pk.host.ID()]
				if ok {
					h.auditsOK++
				} else {
					h.auditsFailed++
				}
				err = e.db.saveHost(ctx, h)
				if err == nil {
					err = e.db.addAudit(ctx, e.now(), pk.host.ID(), pk.p, ok, msg)
				}
				if r := pk.p.at.get(pk.host.ID()); failed && r != nil && r.state == stateOK {
					r.state = stateBad
					if err == nil {
						err = e.db.savePlacement(ctx, pk.p, pk.host.ID(), r)
					}
				}
				e.mu.Unlock()
				if err != nil {
					mu.Lock()
					dbErr = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if dbErr != nil {
		return rep, fmt.Errorf("record audit: %w", dbErr)
	}
	return rep, ctx.Err()
}

// pickLeavesLocked chooses distinct random leaves of an object of size bytes.
func (e *Engine) pickLeavesLocked(size int64) []uint64 {
	n := wire.LeafCount(size)
	k := min(uint64(e.opts.AuditLeaves), n)
	seen := map[uint64]bool{}
	out := make([]uint64, 0, k)
	for uint64(len(out)) < k {
		i := e.rnd.Uint64N(n)
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// auditOne audits one copy. failed reports that the host answered wrongly
// or does not hold the piece (as opposed to not answering).
func (e *Engine) auditOne(ctx context.Context, p *piece, c Candidate, leaves []uint64) (failed bool, err error) {
	e.mu.Lock()
	root, rootKnown, size := p.root, p.rootKnown, p.size
	sha, shaKnown := p.sha, p.shaKnown
	e.mu.Unlock()
	if !rootKnown {
		b, err := e.getPiece(ctx, fetchOpt{idx: p.idx, p: p, host: c})
		if err != nil {
			return errors.Is(err, store.ErrNotFound) || errors.Is(err, ErrCorrupt), err
		}
		if shaKnown && sum256(b) != sha {
			return true, fmt.Errorf("%s on %s: %w", p.h, c.ID(), ErrCorrupt)
		}
		if !shaKnown && p.obj.red.Coded() {
			if _, _, err := checkShard(b); err != nil {
				return true, err
			}
		}
		e.mu.Lock()
		p.root, p.rootKnown = merkleRoot(b), true
		p.sha, p.shaKnown = sum256(b), true
		err = e.db.saveObject(ctx, p.obj)
		e.mu.Unlock()
		return false, err
	}
	actx, cancel := context.WithTimeout(ctx, e.opts.BaseTimeout)
	defer cancel()
	proofs, err := c.Host.Audit(actx, p.h, leaves)
	if err != nil {
		return errors.Is(err, store.ErrNotFound) || errors.Is(err, wire.ErrAuditFailed), fmt.Errorf("audit %s on %s: %w", p.h, c.ID(), err)
	}
	if len(proofs) != len(leaves) {
		return true, fmt.Errorf("audit %s on %s: %d proofs for %d challenges: %w", p.h, c.ID(), len(proofs), len(leaves), wire.ErrAuditFailed)
	}
	for i, pr := range proofs {
		if pr.Index != leaves[i] {
			return true, fmt.Errorf("audit %s on %s: proof for leaf %d, asked %d: %w", p.h, c.ID(), pr.Index, leaves[i], wire.ErrAuditFailed)
		}
		if err := wire.VerifyLeaf(root, size, pr.Index, pr.Data, pr.Path); err != nil {
			return true, fmt.Errorf("audit %s on %s: %w", p.h, c.ID(), err)
		}
	}
	return false, nil
}
