package placement

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// fetchOpt is one way to get one piece: from one host.
type fetchOpt struct {
	idx  int
	p    *piece
	host Candidate
}

type fetchResult struct {
	opt  int
	data []byte
	err  error
}

// fetchObject reads a whole object from the hosts and verifies it: the
// fastest holders first, a slow one hedged by the next after HedgeAfter,
// any K good shards of an erasure-coded pack.
func (e *Engine) fetchObject(ctx context.Context, o *object, hosts []Candidate) ([]byte, error) {
	e.mu.Lock()
	fast := e.fastestLocked(hosts)
	var opts []fetchOpt
	// Rank by host speed, then piece index (data shards before parity
	// shards, which decode without arithmetic).
	// Copies in good standing first; copies that failed an audit or
	// belong to a host given up may still be whole (every byte is
	// verified anyway), so they come last rather than never.
	for _, good := range []bool{true, false} {
		for _, c := range fast {
			if !c.Info.Online || c.Info.Trust == TrustBlocked {
				continue
			}
			for _, p := range o.pieces {
				if p == nil {
					continue
				}
				if r := p.at.get(c.ID()); r != nil && r.state != stateDeleted && (r.state == stateOK) == good {
					opts = append(opts, fetchOpt{idx: p.idx, p: p, host: c})
				}
			}
		}
	}
	red := o.red
	sha, shaKnown := o.sha, o.shaKnown
	e.mu.Unlock()
	if len(opts) == 0 {
		return nil, fmt.Errorf("fetch %s: no online host holds it: %w", o.h, ErrUnrecoverable)
	}
	if !red.Coded() {
		got, err := e.fetchPieces(ctx, opts, 1, func(idx int, b []byte) bool {
			return !shaKnown || sum256(b) == sha
		})
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", o.h, err)
		}
		return got[0], nil
	}
	if !shaKnown {
		return nil, fmt.Errorf("fetch %s: pack ID unknown: %w", o.h, ErrUnrecoverable)
	}
	verify := func(idx int, b []byte) bool {
		e.mu.Lock()
		p := o.pieces[idx]
		want, known := p.sha, p.shaKnown
		e.mu.Unlock()
		if known {
			return sum256(b) == want
		}
		h, _, err := checkShard(b)
		return err == nil && h.Index == idx && h.PackID == sha
	}
	got, ferr := e.fetchPieces(ctx, opts, red.Data, verify)
	objs := make([][]byte, 0, len(got))
	for _, b := range got {
		objs = append(objs, b)
	}
	if ferr == nil {
		pack, err := DecodeShards(sha, objs)
		if err == nil {
			return pack, nil
		}
	}
	// Not enough, or they did not decode to the pack: fetch every other
	// shard too and try again.
	var rest []fetchOpt
	for _, op := range opts {
		if got[op.idx] == nil {
			rest = append(rest, op)
		}
	}
	if len(rest) > 0 {
		more, _ := e.fetchPieces(ctx, rest, distinctPieces(rest), verify)
		for _, b := range more {
			objs = append(objs, b)
		}
	}
	pack, err := DecodeShards(sha, objs)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %d good shards of %d needed: %w", o.h, len(objs), red.Data, err)
	}
	return pack, nil
}

func distinctPieces(opts []fetchOpt) int {
	m := map[int]bool{}
	for _, o := range opts {
		m[o.idx] = true
	}
	return len(m)
}

// fetchPieces gets need distinct, verified pieces, trying opts in order.
// It keeps need fetches running, replaces a failed one with the next
// option for a piece not yet had, and after the hedge delay without
// progress starts one more (another piece, or the same piece from another
// host), up to twice need fetches at once.
func (e *Engine) fetchPieces(ctx context.Context, opts []fetchOpt, need int, verify func(int, []byte) bool) (map[int][]byte, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := map[int][]byte{}
	inflight := map[int]int{}
	tried := make([]bool, len(opts))
	results := make(chan fetchResult, len(opts))
	running := 0
	var lastErr error
	launch := func(allowDup bool) bool {
		for i, op := range opts {
			if tried[i] || got[op.idx] != nil || (!allowDup && inflight[op.idx] > 0) {
				continue
			}
			tried[i] = true
			inflight[op.idx]++
			running++
			go func() {
				b, err := e.getPiece(ctx, op)
				results <- fetchResult{opt: i, data: b, err: err}
			}()
			return true
		}
		return false
	}
	pending := func() int { // distinct pieces in flight
		n := 0
		for idx, c := range inflight {
			if c > 0 && got[idx] == nil {
				n++
			}
		}
		return n
	}
	for len(got)+pending() < need && launch(false) {
	}
	var pieceSize int64
	e.mu.Lock()
	for _, op := range opts {
		pieceSize = max(pieceSize, op.p.size)
	}
	e.mu.Unlock()
	hedgeAfter := e.opts.HedgeAfter + time.Duration(float64(pieceSize)/e.opts.HedgeRate*float64(time.Second))
	hedge := time.NewTimer(hedgeAfter)
	defer hedge.Stop()
	for len(got) < need && running > 0 {
		select {
		case r := <-results:
			running--
			op := opts[r.opt]
			inflight[op.idx]--
			switch {
			case r.err != nil:
				lastErr = r.err
				e.log.Info("read failed", "host", op.host.ID(), "piece", op.p.h.String(), "err", r.err)
			case got[op.idx] != nil:
			case !verify(op.idx, r.data):
				lastErr = fmt.Errorf("%s from %s: %w", op.p.h, op.host.ID(), ErrCorrupt)
				e.log.Warn("host sent bad bytes", "host", op.host.ID(), "piece", op.p.h.String())
			default:
				got[op.idx] = r.data
			}
			for len(got)+pending() < need && launch(false) {
			}
			hedge.Reset(hedgeAfter)
		case <-hedge.C:
			if running < 2*need && !launch(false) {
				launch(true)
			}
			hedge.Reset(hedgeAfter)
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
	if len(got) < need {
		if lastErr == nil {
			lastErr = ErrUnrecoverable
		}
		return got, fmt.Errorf("%d of %d pieces: %w", len(got), need, errors.Join(ErrUnrecoverable, lastErr))
	}
	return got, nil
}

// getPiece reads one whole piece from one host within the transfer timeout.
func (e *Engine) getPiece(ctx context.Context, op fetchOpt) ([]byte, error) {
	e.mu.Lock()
	size := op.p.size
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.timeout(max(size, 0)))
	defer cancel()
	rc, err := op.host.Host.Get(ctx, op.p.h, 0, 0)
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", op.p.h, op.host.ID(), err)
	}
	defer rc.Close()
	limit := int64(1 << 36)
	if size >= 0 {
		limit = size + 1
	}
	b, err := io.ReadAll(io.LimitReader(ctxReader{ctx, rc}, limit))
	if err != nil {
		return nil, fmt.Errorf("get %s from %s: %w", op.p.h, op.host.ID(), err)
	}
	if size >= 0 && int64(len(b)) != size {
		return nil, fmt.Errorf("get %s from %s: %d bytes, want %d: %w", op.p.h, op.host.ID(), len(b), size, ErrCorrupt)
	}
	return b, nil
}

// ctxReader stops reading once ctx is done, for hosts whose reader does
// not watch the context itself.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
