// Package hosting keeps other owners' encrypted objects: the host side of
// cairn's storage protocol (DESIGN §7–8, docs/network.md).
//
// A Server answers offer, put, get, has, renew, delete and audit requests
// on a libp2p host. It keeps objects as files under a folder and its
// records — leases, hosted objects, the per-peer ledger — in a SQLite
// database in the same folder, so it picks up where it left off after a
// restart. It checks every object's SHA-256 before committing it (temporary
// file, fsync, rename), enforces the offer, per-peer quotas and the
// reciprocity rule, and garbage-collects expired leases.
//
// Every request must carry an ownership proof (see package wire); a host
// never serves, renews or deletes one owner's objects for another.
// A peer that breaks the protocol is cut off and logged; nothing it sends
// ever reaches a committed object.
package hosting

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Trust is how a node regards a peer.
type Trust string

// Trust levels. The empty Trust is a peer the node knows nothing about.
const (
	TrustFriend    Trust = "friend"
	TrustCommunity Trust = "community"
	TrustBlocked   Trust = "blocked"
	TrustUnknown   Trust = ""
)

// PeerPolicy tells the host how it regards each peer. The node's peer
// table implements it; it must be safe for concurrent use and fast.
type PeerPolicy interface {
	Trust(node peer.ID) Trust
	// QuotaOverride returns a fixed quota for a peer (typically a friend)
	// that replaces the reciprocity limit.
	QuotaOverride(node peer.ID) (bytes int64, ok bool)
}

// Settings are the host's sharing rules; they can change while it runs.
type Settings struct {
	// OfferBytes is the disk space shared with others, all peers together.
	OfferBytes int64
	// Community accepts objects from peers that are not friends (trust
	// community or unknown) under the reciprocity rule. Off: friends only.
	Community bool
	// FreeAllowance is what any admitted peer may store without giving
	// anything back.
	FreeAllowance int64
	// Ratio: a peer may store Ratio × what it keeps for us, when that is
	// more than FreeAllowance.
	Ratio float64
	// MaxLease is the longest lease granted.
	MaxLease time.Duration
}

// DefaultSettings share nothing until an offer is made, friends only.
func DefaultSettings() Settings {
	return Settings{
		FreeAllowance: 1 << 30,
		Ratio:         1,
		MaxLease:      180 * 24 * time.Hour,
	}
}

// Config configures a Server.
type Config struct {
	Dir      string     // where objects and the database live (home.HostedDir())
	Settings Settings   // initial sharing rules
	Policy   PeerPolicy // nil: every peer is TrustUnknown
	Limits   Limits     // zero fields: DefaultLimits
	Logger   *slog.Logger
	// Now is the clock for leases; nil means time.Now.
	Now func() time.Time
	// DiskFree reports free bytes on Dir's file system; nil measures it.
	DiskFree func() (int64, error)
}

// Server is the host side of the storage protocol.
type Server struct {
	files  files
	db     *db
	log    *slog.Logger
	now    func() time.Time
	free   func() (int64, error)
	policy PeerPolicy
	lim    Limits
	limits *limiter
	codec  *wire.Codec

	mu       sync.Mutex // guards settings and reservations
	settings Settings
	pending  map[peer.ID]int64 // bytes reserved by uploads in progress
	pendAll  int64

	locks [64]sync.Mutex // per-object commit locks, by hash of the key
	seed  maphash.Seed

	hostMu sync.Mutex
	host   host.Host

	// Shutdown: Close cancels base, which resets streams in flight, and
	// waits for their handlers before closing the database.
	base     context.Context
	stop     context.CancelFunc
	inflight sync.WaitGroup
	closeMu  sync.Mutex
	closed   bool
}

// Open opens (creating if needed) the hosted folder, removes leftovers of
// uploads that never finished, and reconciles files with the database.
func Open(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("open hosting: no folder given")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Policy == nil {
		cfg.Policy = noPolicy{}
	}
	s := &Server{
		files:    files{dir: cfg.Dir},
		log:      cfg.Logger.With("component", "hosting"),
		now:      cfg.Now,
		free:     cfg.DiskFree,
		policy:   cfg.Policy,
		lim:      cfg.Limits.withDefaults(),
		codec:    wire.NewCodec(),
		settings: cfg.Settings.normal(),
		pending:  map[peer.ID]int64{},
		seed:     maphash.MakeSeed(),
	}
	s.limits = newLimiter(s.lim)
	s.base, s.stop = context.WithCancel(context.Background())
	if s.free == nil {
		s.free = func() (int64, error) { return diskFree(cfg.Dir) }
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("open hosting %s: %w", cfg.Dir, err)
	}
	if err := s.files.init(); err != nil {
		return nil, fmt.Errorf("open hosting: %w", err)
	}
	d, err := openDB(ctx, filepath.Join(cfg.Dir, "hosting.db"))
	if err != nil {
		return nil, err
	}
	s.db = d
	if err := s.reconcile(ctx); err != nil {
		d.close()
		return nil, fmt.Errorf("open hosting: %w", err)
	}
	return s, nil
}

type noPolicy struct{}

func (noPolicy) Trust(peer.ID) Trust                 { return TrustUnknown }
func (noPolicy) QuotaOverride(peer.ID) (int64, bool) { return 0, false }

// reconcile brings files and records back in line after a crash: partial
// uploads are removed, a file without a record (crash between rename and
// commit: the put was never acknowledged) is removed, and a record without
// a file is dropped and logged as a lost object.
func (s *Server) reconcile(ctx context.Context) error {
	n, err := s.files.clearTmp()
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("removed unfinished uploads", "count", n)
	}
	err = s.files.walk(func(owner string, h store.Handle, path string) error {
		ok := false
		if owner != "" && h.Valid() == nil {
			var err error
			if ok, err = s.db.exists(ctx, owner, h); err != nil {
				return err
			}
		}
		if !ok {
			s.log.Warn("removed object file without record", "path", path)
			return os.Remove(path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reconcile files: %w", err)
	}
	return s.db.all(ctx, func(owner string, h store.Handle) error {
		if _, err := os.Stat(s.files.path(owner, h)); os.IsNotExist(err) {
			s.log.Error("hosted object lost: file missing", "owner", owner, "object", h.String())
			_, err := s.db.remove(ctx, owner, h, time.Time{})
			return err
		}
		return nil
	})
}

// Register installs the storage protocol handlers on h. A Server serves
// one host at a time.
func (s *Server) Register(h host.Host) {
	s.hostMu.Lock()
	defer s.hostMu.Unlock()
	s.host = h
	for _, p := range wire.Protocols {
		h.SetStreamHandler(p, s.handler(p))
	}
}

// Close removes the handlers, resets the streams in progress (their
// partial uploads are removed), waits for them and closes the database.
// No committed object is affected.
func (s *Server) Close() error {
	s.hostMu.Lock()
	if s.host != nil {
		for _, p := range wire.Protocols {
			s.host.RemoveStreamHandler(p)
		}
		s.host = nil
	}
	s.hostMu.Unlock()
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.stop()
	s.inflight.Wait()
	if err := s.db.close(); err != nil {
		return fmt.Errorf("close hosting database: %w", err)
	}
	return nil
}

// Settings returns the sharing rules in force.
func (s *Server) Settings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

// SetSettings changes the sharing rules. Objects already held stay, even
// if they now exceed the offer; only new puts are refused. A MaxLease of
// zero takes the default's; negative sizes and ratios count as zero.
func (s *Server) SetSettings(st Settings) {
	st = st.normal()
	s.mu.Lock()
	s.settings = st
	s.mu.Unlock()
}

func (st Settings) normal() Settings {
	if st.MaxLease <= 0 {
		st.MaxLease = DefaultSettings().MaxLease
	}
	st.OfferBytes = max(0, st.OfferBytes)
	st.FreeAllowance = max(0, st.FreeAllowance)
	st.Ratio = max(0, st.Ratio)
	return st
}

// Ledger returns, for every peer the host knows of, the bytes it keeps for
// the peer and the bytes the peer keeps for us (as last recorded).
func (s *Server) Ledger(ctx context.Context) (map[peer.ID]LedgerEntry, error) {
	return s.db.ledger(ctx)
}

// RecordHeldBy records how many bytes peer p keeps for this node's owner.
// The owner side (the peer store) calls it after placing or removing data;
// the reciprocity rule reads it.
func (s *Server) RecordHeldBy(ctx context.Context, p peer.ID, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("record bytes held by %s: negative %d", p, bytes)
	}
	return s.db.setHeldBy(ctx, p, bytes, s.now())
}

// Usage sums up what the host keeps and what is left of its offer.
func (s *Server) Usage(ctx context.Context) (Usage, error) {
	u, err := s.db.usage(ctx)
	if err != nil {
		return u, err
	}
	st := s.Settings()
	u.OfferBytes = st.OfferBytes
	u.FreeBytes = max(0, st.OfferBytes-u.Bytes)
	return u, nil
}

var errClosed = errors.New("hosting server closed")

// enter counts a handler or GC in; false once the server is closing.
func (s *Server) enter() bool {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return false
	}
	s.inflight.Add(1)
	return true
}

// lockObject serialises commits and deletes of one object.
func (s *Server) lockObject(owner string, h store.Handle) func() {
	return s.lockObjects([]key{{owner, h}})
}

// lockObjects locks the stripes of several objects, always in ascending
// order, so that two callers can never deadlock.
func (s *Server) lockObjects(keys []key) func() {
	var stripes [len(s.locks)]bool
	for _, k := range keys {
		var mh maphash.Hash
		mh.SetSeed(s.seed)
		mh.WriteString(k.owner)
		mh.WriteString(string(k.h.Type))
		mh.WriteString(k.h.Name)
		stripes[mh.Sum64()%uint64(len(s.locks))] = true
	}
	for i, on := range stripes {
		if on {
			s.locks[i].Lock()
		}
	}
	return func() {
		for i, on := range stripes {
			if on {
				s.locks[i].Unlock()
			}
		}
	}
}

// removeObjects deletes records, then files (a crash in between leaves
// files without records, which the next start removes). With a non-zero
// expiredBefore only objects whose lease ended before it go. It returns
// the removed size of each, -1 for those not removed.
func (s *Server) removeObjects(ctx context.Context, keys []key, expiredBefore time.Time) ([]int64, error) {
	unlock := s.lockObjects(keys)
	defer unlock()
	sizes, err := s.db.removeMany(ctx, keys, expiredBefore)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if sizes[i] >= 0 {
			if err := s.files.remove(k.owner, k.h); err != nil {
				return nil, err
			}
		}
	}
	return sizes, nil
}

// GCStats reports one garbage collection.
type GCStats struct {
	Objects int
	Bytes   int64
}

// GC removes every object whose lease ended before now.
func (s *Server) GC(ctx context.Context) (GCStats, error) {
	var st GCStats
	if !s.enter() {
		return st, errClosed
	}
	defer s.inflight.Done()
	now := s.now()
	for {
		rows, err := s.db.expired(ctx, now, 500)
		if err != nil {
			return st, fmt.Errorf("collect expired leases: %w", err)
		}
		if len(rows) == 0 {
			return st, nil
		}
		keys := make([]key, len(rows))
		for i, r := range rows {
			keys[i] = key{r.Owner, r.Handle}
		}
		// A lease may have been renewed since the query: the delete
		// re-checks it.
		sizes, err := s.removeObjects(ctx, keys, now)
		if err != nil {
			return st, fmt.Errorf("collect expired leases: %w", err)
		}
		for _, n := range sizes {
			if n >= 0 {
				st.Objects++
				st.Bytes += n
			}
		}
		if len(rows) < 500 {
			return st, nil
		}
	}
}

// RunGC collects expired leases every interval until ctx ends.
func (s *Server) RunGC(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := s.GC(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("garbage collection failed", "err", err)
			}
			continue
		}
		if st.Objects > 0 {
			s.log.Info("collected expired leases", "objects", st.Objects, "bytes", st.Bytes)
		}
	}
}
