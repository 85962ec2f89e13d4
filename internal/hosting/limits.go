package hosting

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Limits bound what one peer, and all peers together, may ask of a host.
// Zero fields take the defaults of DefaultLimits.
type Limits struct {
	Streams        int           // concurrent storage streams, all peers
	StreamsPerPeer int           // concurrent storage streams of one peer
	RequestRate    float64       // requests per second of one peer, sustained
	RequestBurst   int           // requests of one peer in a burst
	HeaderTimeout  time.Duration // to exchange challenge, request and answer
	MinRate        int64         // bytes per second a body must at least move at
	Penalty        time.Duration // how long a peer that broke the protocol is refused
}

// DefaultLimits are generous for an honest peer and cheap for the host.
func DefaultLimits() Limits {
	return Limits{
		Streams:        64,
		StreamsPerPeer: 8,
		RequestRate:    200,
		RequestBurst:   1000,
		HeaderTimeout:  20 * time.Second,
		MinRate:        64 << 10,
		Penalty:        10 * time.Minute,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.Streams <= 0 {
		l.Streams = d.Streams
	}
	if l.StreamsPerPeer <= 0 {
		l.StreamsPerPeer = d.StreamsPerPeer
	}
	if l.RequestRate <= 0 {
		l.RequestRate = d.RequestRate
	}
	if l.RequestBurst <= 0 {
		l.RequestBurst = d.RequestBurst
	}
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = d.HeaderTimeout
	}
	if l.MinRate <= 0 {
		l.MinRate = d.MinRate
	}
	if l.Penalty <= 0 {
		l.Penalty = d.Penalty
	}
	return l
}

// bodyTimeout is how long a body of n bytes may take.
func (l Limits) bodyTimeout(n int64) time.Duration {
	return l.HeaderTimeout + time.Duration(n/l.MinRate)*time.Second
}

// limiter admits streams. It runs on the real clock: it is about the
// network, not about leases.
type limiter struct {
	lim    Limits
	mu     sync.Mutex
	total  int
	peers  map[peer.ID]*peerLimit
	banned map[peer.ID]time.Time
}

type peerLimit struct {
	active   int
	bucket   *rate.Limiter
	seen     time.Time
	refusals uint64 // streams refused for rate or concurrency
}

func newLimiter(l Limits) *limiter {
	return &limiter{lim: l, peers: map[peer.ID]*peerLimit{}, banned: map[peer.ID]time.Time{}}
}

// admission outcomes
const (
	admitted = iota
	refusedBanned
	refusedBusy
	refusedRate
)

// admit takes a stream slot for p; release must be called when it ends.
// refusals counts the peer's refused streams so far.
func (l *limiter) admit(p peer.ID) (release func(), outcome int, refusals uint64) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if until, ok := l.banned[p]; ok {
		if now.Before(until) {
			return nil, refusedBanned, 0
		}
		delete(l.banned, p)
	}
	pl := l.peers[p]
	if pl == nil {
		if len(l.peers) > 4096 {
			l.sweep(now)
		}
		pl = &peerLimit{bucket: rate.NewLimiter(rate.Limit(l.lim.RequestRate), l.lim.RequestBurst)}
		l.peers[p] = pl
	}
	pl.seen = now
	if !pl.bucket.AllowN(now, 1) {
		pl.refusals++
		return nil, refusedRate, pl.refusals
	}
	if l.total >= l.lim.Streams || pl.active >= l.lim.StreamsPerPeer {
		pl.refusals++
		return nil, refusedBusy, pl.refusals
	}
	l.total++
	pl.active++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			pl.active--
			l.mu.Unlock()
		})
	}, admitted, pl.refusals
}

// sweep forgets idle peers and served penalties. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	for p, pl := range l.peers {
		if pl.active == 0 && now.Sub(pl.seen) > time.Minute {
			delete(l.peers, p)
		}
	}
	for p, until := range l.banned {
		if now.After(until) {
			delete(l.banned, p)
		}
	}
}

// ban refuses p for the penalty time.
func (l *limiter) ban(p peer.ID) {
	l.mu.Lock()
	l.banned[p] = time.Now().Add(l.lim.Penalty)
	l.mu.Unlock()
}
