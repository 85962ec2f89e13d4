package schedule

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// ErrRate is wrapped by every error about a malformed rate.
var ErrRate = errors.New("bad rate")

// ParseRate parses a bandwidth in bytes per second: a number with an
// optional unit (k, M, G in powers of 1000; KiB, MiB, GiB in powers of
// 1024; a trailing "B" and "/s" are allowed; "bit" units divide by eight),
// e.g. "500k", "10MiB/s", "8Mbit". "0", "" and "unlimited" mean no limit (0).
func ParseRate(s string) (int64, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, "unlimited") || s == "0" {
		return 0, nil
	}
	s = strings.TrimSuffix(s, "/s")
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, fmt.Errorf("%w %q: want a number of bytes per second, e.g. 500k or 10MiB", ErrRate, in)
	}
	mult := 1.0
	lower := strings.ToLower(unit)
	bitsUnit := strings.HasSuffix(lower, "bit") || strings.HasSuffix(lower, "bps")
	if bitsUnit {
		lower = strings.TrimSuffix(strings.TrimSuffix(lower, "bit"), "bps")
	} else {
		lower = strings.TrimSuffix(lower, "b")
	}
	switch lower {
	case "":
	case "k":
		mult = 1e3
	case "m":
		mult = 1e6
	case "g":
		mult = 1e9
	case "ki":
		mult = 1 << 10
	case "mi":
		mult = 1 << 20
	case "gi":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("%w %q: unknown unit %q", ErrRate, in, unit)
	}
	if bitsUnit {
		mult /= 8
	}
	r := v * mult
	if r > 1<<50 {
		return 0, fmt.Errorf("%w %q: too large", ErrRate, in)
	}
	if r > 0 && r < 1 {
		r = 1
	}
	return int64(r), nil
}

// FormatRate formats bytes per second for people, exactly, in the units
// ParseRate reads: binary units when the rate is a whole number of them,
// else decimal ones, e.g. "10MiB/s", "500kB/s".
func FormatRate(bps int64) string {
	if bps <= 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1000 * 1000 * 1000, "GB"}, {1 << 20, "MiB"}, {1000 * 1000, "MB"}, {1 << 10, "KiB"}, {1000, "kB"}} {
		if bps%u.n == 0 {
			return strconv.FormatInt(bps/u.n, 10) + u.name + "/s"
		}
	}
	return strconv.FormatInt(bps, 10) + "B/s"
}

// NewLimiter returns a token bucket of bps bytes per second, or nil (no
// limit) when bps <= 0. Its burst, the most one wait grants, is a tenth of
// a second's worth, between 4 KiB and 1 MiB.
func NewLimiter(bps int64) *rate.Limiter {
	if bps <= 0 {
		return nil
	}
	burst := min(max(bps/10, 4<<10), 1<<20)
	return rate.NewLimiter(rate.Limit(bps), int(burst))
}

// chunk is the most bytes one Read or Write may pass without exceeding the
// burst of any limiter.
func chunk(lims []*rate.Limiter) int {
	n := math.MaxInt
	for _, l := range lims {
		n = min(n, l.Burst())
	}
	return n
}

func nonNil(lims []*rate.Limiter) []*rate.Limiter {
	out := lims[:0:0]
	for _, l := range lims {
		if l != nil {
			out = append(out, l)
		}
	}
	return out
}

type limitedReader struct {
	ctx  context.Context
	r    io.Reader
	lims []*rate.Limiter
}

// LimitReader returns a reader that takes a token for each byte read from
// r from every limiter (nil ones are ignored), so the tightest wins. A wait
// ends early with ctx's error when ctx is done.
func LimitReader(ctx context.Context, r io.Reader, lims ...*rate.Limiter) io.Reader {
	lims = nonNil(lims)
	if len(lims) == 0 {
		return r
	}
	return &limitedReader{ctx: ctx, r: r, lims: lims}
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if c := chunk(l.lims); len(p) > c {
		p = p[:c]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		for _, lim := range l.lims {
			if werr := lim.WaitN(l.ctx, n); werr != nil {
				return n, werr
			}
		}
	}
	return n, err
}

type limitedWriter struct {
	ctx  context.Context
	w    io.Writer
	lims []*rate.Limiter
}

// LimitWriter returns a writer that takes a token for each byte from every
// limiter before writing it to w.
func LimitWriter(ctx context.Context, w io.Writer, lims ...*rate.Limiter) io.Writer {
	lims = nonNil(lims)
	if len(lims) == 0 {
		return w
	}
	return &limitedWriter{ctx: ctx, w: w, lims: lims}
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	c := chunk(l.lims)
	written := 0
	for len(p) > 0 {
		n := min(len(p), c)
		for _, lim := range l.lims {
			if err := lim.WaitN(l.ctx, n); err != nil {
				return written, err
			}
		}
		m, err := l.w.Write(p[:n])
		written += m
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// Limits are a node's bandwidth limits in bytes per second; 0 is unlimited.
type Limits struct {
	Up, Down         int64 // all peers together
	PeerUp, PeerDown int64 // each peer
}

// Shaper applies Limits to the traffic with peers: one global bucket each
// way, and one per peer each way. It is safe for concurrent use.
type Shaper struct {
	up, down *rate.Limiter
	limits   Limits

	mu    sync.Mutex
	peers map[string][2]*rate.Limiter // up, down
}

// NewShaper returns a Shaper for l.
func NewShaper(l Limits) *Shaper {
	return &Shaper{up: NewLimiter(l.Up), down: NewLimiter(l.Down), limits: l, peers: map[string][2]*rate.Limiter{}}
}

func (s *Shaper) peer(id string) [2]*rate.Limiter {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.peers[id]
	if !ok {
		p = [2]*rate.Limiter{NewLimiter(s.limits.PeerUp), NewLimiter(s.limits.PeerDown)}
		s.peers[id] = p
	}
	return p
}

// Writer limits data sent to peer (upload) by the global and per-peer
// limits; extra limiters (a source's own limit) are applied too.
func (s *Shaper) Writer(ctx context.Context, peer string, w io.Writer, extra ...*rate.Limiter) io.Writer {
	return LimitWriter(ctx, w, append([]*rate.Limiter{s.up, s.peer(peer)[0]}, extra...)...)
}

// Reader limits data received from peer (download).
func (s *Shaper) Reader(ctx context.Context, peer string, r io.Reader, extra ...*rate.Limiter) io.Reader {
	return LimitReader(ctx, r, append([]*rate.Limiter{s.down, s.peer(peer)[1]}, extra...)...)
}

// Forget drops the per-peer buckets of a peer that went away.
func (s *Shaper) Forget(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.peers, peer)
}

// UploadReader limits the reading of data that is being sent to peer (an
// upload fed from a reader) by the global and per-peer upload limits and
// any extra limiters.
func (s *Shaper) UploadReader(ctx context.Context, peer string, r io.Reader, extra ...*rate.Limiter) io.Reader {
	return LimitReader(ctx, r, append([]*rate.Limiter{s.up, s.peer(peer)[0]}, extra...)...)
}
