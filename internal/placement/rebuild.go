package placement

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/cairn-backup/cairn/internal/store"
)

// RebuildReport says what Rebuild found.
type RebuildReport struct {
	Hosts   int // hosts listed
	Failed  int // hosts that could not be listed
	Objects int // objects known afterwards
	Copies  int // copies added to the record
	Skipped int // entries placement does not know (foreign names, locks)
}

// Rebuild fills the record from what the online hosts hold (their List):
// after a recovery from nothing, or to reconcile a record with the hosts.
// It adds and never removes. What it cannot learn from a listing is
// filled in later: the Merkle roots at the first audit of each copy, the
// size of erasure-coded packs at their first Stat or read. Whole-copy
// packs get the larger of the copies found and the engine's configured
// copies as their redundancy.
func (e *Engine) Rebuild(ctx context.Context, hosts []Candidate) (RebuildReport, error) {
	var rep RebuildReport
	type listing struct {
		id      string
		entries []Entry
	}
	var mu sync.Mutex
	var lists []listing
	var wg sync.WaitGroup
	for _, c := range hosts {
		if !c.Info.Online || c.Info.Trust == TrustBlocked {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var es []Entry
			err := c.Host.List(ctx, "", func(en Entry) error {
				es = append(es, en)
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				rep.Failed++
				e.log.Warn("list host failed", "host", c.ID(), "err", err)
				return
			}
			rep.Hosts++
			lists = append(lists, listing{c.ID(), es})
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return rep, err
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.seenLocked(ctx, hosts); err != nil {
		return rep, err
	}
	touched := map[*object]bool{}
	type newCopy struct {
		p  *piece
		id string
		r  *copyRec
	}
	var copies []newCopy
	for _, l := range lists {
		for _, en := range l.entries {
			o, idx := e.adoptLocked(en)
			if o == nil {
				rep.Skipped++
				continue
			}
			touched[o] = true
			var p *piece
			if idx < len(o.pieces) {
				p = o.pieces[idx]
			}
			if p == nil {
				p = &piece{obj: o, h: en.Handle, idx: idx, size: en.Size, sha: en.SHA256, shaKnown: true}
				o.addPiece(p)
			} else if p.shaKnown && p.sha != en.SHA256 && len(p.at) > 0 && !p.rootKnown {
				// Hosts disagree and nothing says who is right: shards
				// are judged by their own hash lists and the pack ID; a
				// config by the repository, which authenticates it.
				p.shaKnown = false
				if _, ok := contentID(o.h); !ok {
					o.shaKnown = false
				}
			}
			if p.at.get(l.id) != nil {
				continue
			}
			r := &copyRec{until: en.Until, placed: e.now(), state: stateOK}
			e.setCopyLocked(p, e.internLocked(l.id), r)
			copies = append(copies, newCopy{p, l.id, r})
			rep.Copies++
		}
	}
	err := e.db.batch(ctx, func() error {
		for _, l := range lists {
			if h := e.hosts[l.id]; h != nil {
				h.listed = true
				if err := e.db.saveHost(ctx, h); err != nil {
					return fmt.Errorf("rebuild: record host: %w", err)
				}
			}
		}
		if !e.rebuilt {
			if _, err := e.db.ex().ExecContext(ctx, `INSERT INTO kv (key, value) VALUES ('rebuilt', '1')
				ON CONFLICT (key) DO UPDATE SET value = excluded.value`); err != nil {
				return fmt.Errorf("rebuild: %w", err)
			}
			e.rebuilt = true
		}
		for o := range touched {
			if !o.meta() && !o.red.Coded() && len(o.pieces) > 0 && o.pieces[0] != nil {
				n := len(o.pieces[0].at)
				if e.opts.Redundancy.Copies > n {
					n = e.opts.Redundancy.Copies
				}
				o.red.Copies = max(o.red.Copies, n)
			}
			if err := e.db.saveObject(ctx, o); err != nil {
				return fmt.Errorf("rebuild: record %s: %w", o.h, err)
			}
		}
		for _, c := range copies {
			if err := e.db.savePlacement(ctx, c.p, c.id, c.r); err != nil {
				return fmt.Errorf("rebuild: record placement: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		// The record in memory is ahead of the database; it is rebuilt
		// again at the next start.
		return rep, err
	}
	rep.Objects = len(e.objs)
	return rep, nil
}

// adoptLocked finds or creates the object a listed entry belongs to and
// returns it with the piece index; nil for entries placement does not keep.
func (e *Engine) adoptLocked(en Entry) (*object, int) {
	h := en.Handle
	if h.Valid() != nil {
		return nil, 0
	}
	get := func(oh store.Handle, red Redundancy) *object {
		o := e.objs[oh]
		if o == nil {
			o = &object{h: oh, size: -1, red: red, created: e.now()}
			o.sha, o.shaKnown = contentID(oh)
			e.objs[oh] = o
		}
		if o.red.Coded() != red.Coded() || (red.Coded() && o.red != red) || o.meta() != red.meta() {
			return nil // the same object placed in another way: keep the first
		}
		return o
	}
	switch {
	case h.Type == store.Lock:
		return nil, 0
	case h.Type == store.Pack:
		if id, red, idx, ok := ParseShardName(h.Name); ok {
			return get(store.Handle{Type: store.Pack, Name: id}, red), idx
		}
		if _, ok := contentID(h); !ok {
			return nil, 0
		}
		o := get(h, Replicas(1))
		if o != nil {
			o.size = en.Size
		}
		return o, 0
	default:
		if _, ok := contentID(h); !ok && h.Type != store.Config {
			return nil, 0
		}
		o := get(h, Redundancy{})
		if o != nil {
			if o.size < 0 {
				o.size = en.Size
			}
			if !o.shaKnown {
				o.sha, o.shaKnown = en.SHA256, true
			}
		}
		return o, 0
	}
}

func (r Redundancy) meta() bool { return r == Redundancy{} }

// resolveSize learns the size of an erasure-coded pack recorded by a
// rebuild from the header of one of its shards.
func (e *Engine) resolveSize(ctx context.Context, o *object, hosts []Candidate) (int64, error) {
	e.mu.Lock()
	size := o.size
	red, sha := o.red, o.sha
	var opts []fetchOpt
	for _, c := range e.fastestLocked(hosts) {
		if !c.Info.Online || c.Info.Trust == TrustBlocked {
			continue
		}
		for _, p := range o.pieces {
			if p != nil && p.at.get(c.ID()) != nil {
				opts = append(opts, fetchOpt{idx: p.idx, p: p, host: c})
			}
		}
	}
	e.mu.Unlock()
	if size >= 0 {
		return size, nil
	}
	var lastErr error = ErrUnrecoverable
	for _, op := range opts {
		hctx, cancel := context.WithTimeout(ctx, e.opts.BaseTimeout)
		rc, err := op.host.Host.Get(hctx, op.p.h, 0, int64(ShardHeaderSize(red)))
		if err != nil {
			cancel()
			lastErr = err
			continue
		}
		b := make([]byte, ShardHeaderSize(red))
		_, err = io.ReadFull(rc, b)
		rc.Close()
		cancel()
		if err != nil {
			lastErr = err
			continue
		}
		hd, err := ParseShardHeader(b)
		if err != nil || hd.PackID != sha || hd.K != red.Data || hd.M != red.Parity {
			lastErr = fmt.Errorf("%s on %s: %w", op.p.h, op.host.ID(), ErrShard)
			continue
		}
		e.mu.Lock()
		o.size = hd.PackSize
		err = e.db.saveObject(ctx, o)
		e.mu.Unlock()
		return hd.PackSize, err
	}
	return 0, fmt.Errorf("size of %s: %w", o.h, lastErr)
}

// adoptUnlisted lists, in a record that was rebuilt, the online hosts
// that were not listed yet (offline during the recovery, say), so that
// what they hold counts instead of being placed again elsewhere.
func (e *Engine) adoptUnlisted(ctx context.Context, hosts []Candidate) error {
	e.mu.Lock()
	var todo []Candidate
	if e.rebuilt {
		for _, c := range hosts {
			if c.Info.Online && c.Info.Trust != TrustBlocked {
				if h := e.hosts[c.ID()]; h == nil || !h.listed {
					todo = append(todo, c)
				}
			}
		}
	}
	e.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	rep, err := e.Rebuild(ctx, todo)
	if err != nil {
		return err
	}
	e.log.Info("adopted what returning hosts hold", "hosts", rep.Hosts, "copies", rep.Copies)
	return nil
}
