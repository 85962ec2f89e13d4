package placement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

// Defaults of Options.
const (
	DefaultLease       = 90 * 24 * time.Hour
	DefaultGrace       = 14 * 24 * time.Hour
	DefaultBaseTimeout = 30 * time.Second
	DefaultMinRate     = 128 << 10 // bytes per second
	DefaultHedgeAfter  = 3 * time.Second
	DefaultHedgeRate   = 1 << 20 // bytes per second
	DefaultAuditLeaves = 4
)

// Options configure an Engine.
type Options struct {
	// Path is the placement database (SQLite). Required.
	Path string
	// Exclusive takes a lock so that no other exclusive engine opens the
	// record until Close (see Open).
	Exclusive bool
	// Redundancy for packs placed from now on. The zero value chooses
	// DefaultRedundancy from the number of hosts that are not blocked.
	// Packs keep the redundancy they were placed with.
	Redundancy Redundancy
	// Lease is how long hosts are asked to keep pieces (DefaultLease).
	Lease time.Duration
	// Grace is how long a host may be unseen before its pieces are placed
	// elsewhere (DefaultGrace).
	Grace time.Duration
	// BaseTimeout and MinRate bound every transfer of one piece to or from
	// one host: BaseTimeout + size/MinRate. A slower host is given up.
	BaseTimeout time.Duration
	MinRate     float64
	// HedgeAfter and HedgeRate decide when a read that has not finished
	// asks another host as well: after HedgeAfter + piece size/HedgeRate
	// without progress (DefaultHedgeAfter, DefaultHedgeRate). A read
	// keeps at most twice as many fetches running as it needs pieces.
	HedgeAfter time.Duration
	HedgeRate  float64
	// Workers is how many packs are placed at once (2).
	Workers int
	// AuditLeaves is how many leaves one audit challenges (DefaultAuditLeaves, at most 16).
	AuditLeaves int
	// Now is the clock for leases and grace periods (time.Now).
	Now func() time.Time
	// Rand picks audit challenges; nil seeds one from the runtime.
	Rand *rand.Rand
	// Logger receives what went wrong with single hosts (slog.Default()).
	Logger *slog.Logger
}

// Engine places an owner's objects on hosts and keeps them there. It is
// safe for concurrent use.
type Engine struct {
	opts Options
	log  *slog.Logger
	db   *db

	mu    sync.Mutex // guards everything below and serialises database writes
	objs  map[store.Handle]*object
	hosts map[string]*hostRec
	rnd   *rand.Rand
	// busy holds the objects being placed: one placement of an object at
	// a time, so that concurrent calls never put two pieces of one pack
	// on one host.
	busy map[store.Handle]chan struct{}
	// held is the bytes of copies on each host that are not deleted: the
	// load that placement spreads (see rank).
	held map[string]int64
	// rebuilt: the record was (partly) rebuilt from hosts' listings; hosts
	// not listed yet are listed when they come online (adoptUnlisted).
	rebuilt bool

	lock *os.File // held until Close
}

// ErrBusy says another engine holds the placement record exclusively
// (Options.Exclusive).
var ErrBusy = errors.New("placement record in use by another process")

// Open opens (creating if needed) the placement database and loads it.
//
// Two engines that place at once on one record (a daemon and a command)
// do not see each other's placements and could put two pieces of a pack
// on one host. With Options.Exclusive, Open takes a lock on Path + ".lock"
// until Close, and a second exclusive Open fails with ErrBusy; commands
// that only report use OpenReadOnly.
func Open(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Path == "" {
		return nil, errors.New("open placement: no database path")
	}
	if !opts.Exclusive {
		return open(ctx, opts, false)
	}
	if err := os.MkdirAll(filepath.Dir(opts.Path), 0o700); err != nil {
		return nil, fmt.Errorf("open placement: %w", err)
	}
	lock, err := os.OpenFile(opts.Path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open placement: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open placement %s: %w", opts.Path, err)
	}
	e, err := open(ctx, opts, false)
	if err != nil {
		lock.Close()
		return nil, err
	}
	e.lock = lock
	return e, nil
}

// OpenReadOnly loads the record without taking the lock, for a command
// that reports (Status, CountsOf) while the daemon holds it. Nothing else
// may be called on the result: every write fails. A record that does not
// exist yet reads as empty.
func OpenReadOnly(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Path == "" {
		return nil, errors.New("open placement: no database path")
	}
	if _, err := os.Stat(opts.Path); errors.Is(err, os.ErrNotExist) {
		// An empty record in a scratch file, gone when this returns.
		tmp, err := os.MkdirTemp("", "cairn-placement-")
		if err != nil {
			return nil, fmt.Errorf("open placement: %w", err)
		}
		defer os.RemoveAll(tmp)
		opts.Path = filepath.Join(tmp, "empty.db")
		return open(ctx, opts, false)
	}
	return open(ctx, opts, true)
}

func open(ctx context.Context, opts Options, readOnly bool) (*Engine, error) {
	if opts.Redundancy != (Redundancy{}) {
		if err := opts.Redundancy.Validate(); err != nil {
			return nil, fmt.Errorf("open placement: %w", err)
		}
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	if opts.BaseTimeout <= 0 {
		opts.BaseTimeout = DefaultBaseTimeout
	}
	if opts.MinRate <= 0 {
		opts.MinRate = DefaultMinRate
	}
	if opts.HedgeAfter <= 0 {
		opts.HedgeAfter = DefaultHedgeAfter
	}
	if opts.HedgeRate <= 0 {
		opts.HedgeRate = DefaultHedgeRate
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.AuditLeaves <= 0 || opts.AuditLeaves > 16 {
		opts.AuditLeaves = DefaultAuditLeaves
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d, err := openDB(ctx, opts.Path, readOnly)
	if err != nil {
		return nil, fmt.Errorf("open placement database %s: %w", opts.Path, err)
	}
	objs, hosts, err := d.load(ctx)
	if err != nil {
		d.sql.Close()
		return nil, fmt.Errorf("load placement database %s: %w", opts.Path, err)
	}
	var rebuilt string
	if err := d.sql.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = 'rebuilt'`).Scan(&rebuilt); err != nil && !errors.Is(err, sql.ErrNoRows) {
		d.sql.Close()
		return nil, fmt.Errorf("load placement database %s: %w", opts.Path, err)
	}
	e := &Engine{opts: opts, log: opts.Logger, db: d, objs: objs, hosts: hosts, rnd: opts.Rand,
		busy: map[store.Handle]chan struct{}{}, rebuilt: rebuilt == "1",
		held: map[string]int64{}}
	for p, r := range allCopies(objs) {
		if r.state != stateDeleted {
			e.held[r.host] += p.size
		}
	}
	return e, nil
}

// Close closes the database and releases the lock.
func (e *Engine) Close() error {
	err := e.db.sql.Close()
	if e.lock != nil {
		e.lock.Close()
		e.lock = nil
	}
	return err
}

func (e *Engine) now() time.Time { return e.opts.Now() }

// leaseFor returns the lease to ask of host c: the engine's, or shorter
// if the host grants less.
func (e *Engine) leaseFor(c Candidate) time.Duration {
	if c.Info.MaxLease > 0 && c.Info.MaxLease < e.opts.Lease {
		return c.Info.MaxLease
	}
	return e.opts.Lease
}

func (e *Engine) timeout(size int64) time.Duration {
	return e.opts.BaseTimeout + time.Duration(float64(size)/e.opts.MinRate*float64(time.Second))
}

// Empty reports whether the record holds no object: a new owner, or a
// recovery that must Rebuild it from the hosts.
func (e *Engine) Empty() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.objs) == 0
}

// seen records the online hosts as seen now; the caller holds e.mu.
func (e *Engine) seenLocked(ctx context.Context, hosts []Candidate) error {
	return e.db.batch(ctx, func() error { return e.seenBatchLocked(ctx, hosts) })
}

func (e *Engine) seenBatchLocked(ctx context.Context, hosts []Candidate) error {
	now := e.now()
	for _, c := range hosts {
		if !c.Info.Online {
			continue
		}
		h := e.hosts[c.ID()]
		if h == nil {
			h = &hostRec{id: c.ID(), firstSeen: now}
			e.hosts[h.id] = h
		}
		h.lastSeen = now
		if err := e.db.saveHost(ctx, h); err != nil {
			return fmt.Errorf("record host %s: %w", h.id, err)
		}
	}
	return nil
}

// setCopyLocked records rec as p's copy on host, keeping held.
func (e *Engine) setCopyLocked(p *piece, host string, rec *copyRec) {
	if old := p.at.get(host); old != nil && old.state != stateDeleted {
		e.held[host] -= p.size
	}
	if rec.state != stateDeleted {
		e.held[host] += p.size
	}
	p.at.set(host, rec)
}

// delCopyLocked forgets p's copy on host, keeping held.
func (e *Engine) delCopyLocked(p *piece, host string) {
	if old := p.at.get(host); old != nil && old.state != stateDeleted {
		e.held[host] -= p.size
	}
	p.at.del(host)
}

// markDeletedLocked records that r was deleted from its host.
func (e *Engine) markDeletedLocked(p *piece, r *copyRec) {
	if r.state != stateDeleted {
		e.held[r.host] -= p.size
	}
	r.state = stateDeleted
}

// internLocked returns the recorded copy of a host ID, so that the record
// holds one string per host.
func (e *Engine) internLocked(id string) string {
	if h := e.hosts[id]; h != nil {
		return h.id
	}
	return id
}

// goneLocked reports whether host id has been unseen for longer than the
// grace period and is not online now.
func (e *Engine) goneLocked(id string, online map[string]bool) bool {
	if online[id] {
		return false
	}
	h := e.hosts[id]
	if h == nil {
		return false // never seen online: a host recorded by a rebuild, give it the grace period from now
	}
	return e.now().Sub(h.lastSeen) > e.opts.Grace
}

func onlineSet(hosts []Candidate) map[string]bool {
	m := map[string]bool{}
	for _, c := range hosts {
		if c.Info.Online && c.Info.Trust != TrustBlocked {
			m[c.ID()] = true
		}
	}
	return m
}

// healthyLocked counts the copies of p that count: state ok, lease not
// ended, on a host not gone.
func (e *Engine) healthyLocked(p *piece, online map[string]bool) int {
	n := 0
	now := e.now()
	for _, c := range p.at {
		id := c.host
		if c.state == stateOK && c.until.After(now) && !e.goneLocked(id, online) {
			n++
		}
	}
	return n
}

// rank orders the hosts that may receive pieces: online and not blocked;
// friends before community hosts, hosts with a poor audit record last;
// within a tier by a score of reputation (weighing most), free space, RTT
// and bandwidth, less the load (what the host already keeps for us, as a
// share of the most any candidate keeps) so that placements spread.
func (e *Engine) rank(hosts []Candidate) []Candidate {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rankLocked(hosts)
}

func (e *Engine) rankLocked(hosts []Candidate) []Candidate {
	var out []Candidate
	var maxFree, maxHeld int64
	var maxBW float64
	var minRTT time.Duration
	for _, c := range hosts {
		if !c.Info.Online || c.Info.Trust == TrustBlocked {
			continue
		}
		out = append(out, c)
		maxFree = max(maxFree, c.Info.FreeBytes)
		maxHeld = max(maxHeld, e.held[c.ID()])
		maxBW = max(maxBW, c.Info.BandwidthBps)
		if c.Info.RTT > 0 && (minRTT == 0 || c.Info.RTT < minRTT) {
			minRTT = c.Info.RTT
		}
	}
	type scored struct {
		tier  int
		score float64
	}
	sc := map[string]scored{}
	for _, c := range out {
		rep := e.hosts[c.ID()].reputation()
		tier := 1
		if c.Info.Trust == TrustFriend {
			tier = 0
		}
		if rep < 0.5 { // worse than a new host: more than one audit in four failed
			tier = 2
		}
		free, rtt, bw := 0.5, 0.5, 0.5
		if c.Info.FreeBytes > 0 && maxFree > 0 {
			free = float64(c.Info.FreeBytes) / float64(maxFree)
		}
		if c.Info.RTT > 0 {
			rtt = float64(minRTT) / float64(c.Info.RTT)
		}
		if c.Info.BandwidthBps > 0 && maxBW > 0 {
			bw = c.Info.BandwidthBps / maxBW
		}
		load := 0.0
		if maxHeld > 0 {
			load = float64(max(e.held[c.ID()], 0)) / float64(maxHeld)
		}
		sc[c.ID()] = scored{tier, 4*rep + free + rtt + bw - 2*load}
	}
	sort.SliceStable(out, func(a, b int) bool {
		x, y := sc[out[a].ID()], sc[out[b].ID()]
		if x.tier != y.tier {
			return x.tier < y.tier
		}
		if x.score != y.score {
			return x.score > y.score
		}
		return out[a].ID() < out[b].ID()
	})
	return out
}

// fastest orders hosts for reading: lowest RTT first (unknown last), then
// bandwidth, then reputation.
func (e *Engine) fastestLocked(hosts []Candidate) []Candidate {
	out := append([]Candidate(nil), hosts...)
	rtt := func(c Candidate) time.Duration {
		if c.Info.RTT <= 0 {
			return time.Hour
		}
		return c.Info.RTT
	}
	sort.SliceStable(out, func(a, b int) bool {
		x, y := out[a], out[b]
		if rtt(x) != rtt(y) {
			return rtt(x) < rtt(y)
		}
		if x.Info.BandwidthBps != y.Info.BandwidthBps {
			return x.Info.BandwidthBps > y.Info.BandwidthBps
		}
		rx, ry := e.hosts[x.ID()].reputation(), e.hosts[y.ID()].reputation()
		if rx != ry {
			return rx > ry
		}
		return x.ID() < y.ID()
	})
	return out
}

// Summary is what a Sync or Repair did and where placement stands after it.
type Summary struct {
	Counts                // packs, after the call
	MetaIncomplete int    // metadata objects not yet on every online host
	PiecesSent     int    // pieces put on hosts
	BytesSent      int64  // bytes sent to hosts
	Failures       int    // puts and reads that failed (each is logged)
	Dropped        int    // copies given up (failed audit, host gone), by Repair
	Deleted        int    // copies deleted on hosts (forgotten objects, replaced copies)
	LastError      string // the last failure, for people
}

// Counts sorts packs by how well they are placed.
type Counts struct {
	Placed   int // every piece placed as the redundancy asks
	Degraded int // recoverable from hosts, but some pieces are missing
	Missing  int // not recoverable from hosts (no copy, or fewer than K shards)
}

type syncState struct {
	mu  sync.Mutex
	sum Summary
	// progress, if set, is called after each object placed.
	progress func(Summary)
	reportMu sync.Mutex
	// failed holds the hosts that failed a put in this call: they are not
	// asked again until the next call, so one hanging host costs one
	// timeout, not one per object.
	failed map[string]bool
}

func (s *syncState) snapshot() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sum
}

// report calls the progress function with the running totals, one call
// at a time, so that the totals reported never go down.
func (s *syncState) report() {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.progress(s.snapshot())
}

func (s *syncState) hostFailed(id string) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = map[string]bool{}
	}
	s.failed[id] = true
	s.mu.Unlock()
}

func (s *syncState) usable(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.failed[id]
}

func (s *syncState) fail(err error) {
	s.mu.Lock()
	s.sum.Failures++
	s.sum.LastError = err.Error()
	s.mu.Unlock()
}

func (s *syncState) sent(n int64) {
	s.mu.Lock()
	s.sum.PiecesSent++
	s.sum.BytesSent += n
	s.mu.Unlock()
}

// SyncOptions adjust one Sync.
type SyncOptions struct {
	// Redundancy for packs not placed before (zero: the engine's).
	Redundancy Redundancy
	// Progress, if set, is called after each object that needed placing,
	// with the running totals (PiecesSent, BytesSent, Failures); from
	// several goroutines, never at once.
	Progress func(Summary)
	// HostList, when not nil, is the owner's encrypted host list, kept on
	// every host as HostListHandle(HostList); the host list given before
	// is then deleted.
	HostList []byte
}

// Sync places every object of the local repository src (config, keys,
// indexes, snapshots, packs; not locks) that is not fully placed on the
// online hosts, and completes placements left degraded by earlier calls
// (from src, or rebuilt from hosts when src does not hold the object). src
// may be nil: then only earlier placements are completed. Too few hosts is
// not an error: what can be placed is placed and the summary counts the
// rest. Errors of single hosts are logged and counted; Sync fails only if
// src cannot be listed, the database fails, or ctx ends.
func (e *Engine) Sync(ctx context.Context, src store.Reader, hosts []Candidate, so SyncOptions) (Summary, error) {
	st := &syncState{progress: so.Progress}
	e.mu.Lock()
	err := e.seenLocked(ctx, hosts)
	nonBlocked := 0
	for _, c := range hosts {
		if c.Info.Trust != TrustBlocked {
			nonBlocked++
		}
	}
	e.mu.Unlock()
	if err != nil {
		return Summary{}, err
	}
	if err := e.adoptUnlisted(ctx, hosts); err != nil {
		return Summary{}, fmt.Errorf("sync: %w", err)
	}
	red := so.Redundancy
	if red == (Redundancy{}) {
		red = e.opts.Redundancy
	}
	if red == (Redundancy{}) {
		red = DefaultRedundancy(nonBlocked)
	}
	if err := red.Validate(); err != nil {
		return Summary{}, fmt.Errorf("sync: %w", err)
	}
	if src != nil {
		var infos []store.Info
		for _, t := range []store.Type{store.Config, store.Key, store.Index, store.Snapshot, store.Meta, store.Pack} {
			err := src.List(ctx, t, func(i store.Info) error {
				infos = append(infos, i)
				return nil
			})
			if err != nil {
				return Summary{}, fmt.Errorf("sync: list local %s: %w", t, err)
			}
		}
		e.mu.Lock()
		err := e.db.batch(ctx, func() error {
			for _, i := range infos {
				r := Redundancy{}
				if i.Handle.Type == store.Pack {
					r = red
				}
				if err := e.registerLocked(ctx, i.Handle, i.Size, r); err != nil {
					return err
				}
			}
			return nil
		})
		e.mu.Unlock()
		if err != nil {
			return Summary{}, fmt.Errorf("sync: %w", err)
		}
	}
	var given map[store.Handle][]byte
	if so.HostList != nil {
		given = map[store.Handle][]byte{HostListHandle(so.HostList): so.HostList}
		if err := e.setHostList(ctx, so.HostList); err != nil {
			return Summary{}, err
		}
	}
	if err := e.deleteForgotten(ctx, hosts, st); err != nil {
		return Summary{}, err
	}
	if err := e.fillAll(ctx, src, given, hosts, st); err != nil {
		return st.sum, err
	}
	e.mu.Lock()
	online := onlineSet(hosts)
	st.sum.Counts = e.countsLocked(nil, online)
	st.sum.MetaIncomplete = e.metaIncompleteLocked(online)
	e.mu.Unlock()
	return st.sum, nil
}

// registerLocked adds an object of the local repository to the record.
func (e *Engine) registerLocked(ctx context.Context, h store.Handle, size int64, red Redundancy) error {
	o := e.objs[h]
	if o != nil {
		if !o.forgotten {
			return nil
		}
		o.forgotten = false // back again: place it again
		return e.db.saveObject(ctx, o)
	}
	o = &object{h: h, size: size, red: red, created: e.now()}
	o.sha, o.shaKnown = contentID(h)
	e.objs[h] = o
	if err := e.db.saveObject(ctx, o); err != nil {
		return fmt.Errorf("record %s: %w", h, err)
	}
	return nil
}

// setHostList records the current host list and forgets the one before.
func (e *Engine) setHostList(ctx context.Context, data []byte) error {
	h := HostListHandle(data)
	e.mu.Lock()
	defer e.mu.Unlock()
	var old string
	err := e.db.sql.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = 'hostlist'`).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read host list record: %w", err)
	}
	if old == h.Name {
		if o := e.objs[h]; o != nil && !o.forgotten {
			return nil
		}
	}
	if o := e.objs[store.Handle{Type: store.Meta, Name: old}]; old != "" && old != h.Name && o != nil {
		o.forgotten = true
		if err := e.db.saveObject(ctx, o); err != nil {
			return fmt.Errorf("forget old host list: %w", err)
		}
	}
	o := e.objs[h]
	if o == nil {
		o = &object{h: h, size: int64(len(data)), created: e.now()}
		e.objs[h] = o
	}
	o.sha, o.shaKnown, o.forgotten = sum256(data), true, false
	if err := e.db.saveObject(ctx, o); err != nil {
		return fmt.Errorf("record host list: %w", err)
	}
	if _, err := e.db.sql.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES ('hostlist', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, h.Name); err != nil {
		return fmt.Errorf("record host list: %w", err)
	}
	return nil
}

// rewriteMetaLocked gives a metadata object new content: its one piece is
// rebuilt and the copies holding the old content are forgotten (the next
// put replaces them).
func (e *Engine) rewriteMetaLocked(ctx context.Context, o *object, data []byte) error {
	if len(o.pieces) > 0 && o.pieces[0] != nil {
		p := o.pieces[0]
		for _, r := range p.at {
			id := r.host
			if err := e.db.deletePlacement(ctx, p, id); err != nil {
				return fmt.Errorf("record %s: %w", o.h, err)
			}
			if r.state != stateDeleted {
				e.held[id] -= p.size
			}
		}
		p.at = nil
	}
	e.buildPiecesLocked(o, map[int][]byte{0: data})
	if err := e.db.saveObject(ctx, o); err != nil {
		return fmt.Errorf("record %s: %w", o.h, err)
	}
	return nil
}

// buildPiecesLocked fills in the pieces of o from their bytes.
func (e *Engine) buildPiecesLocked(o *object, data map[int][]byte) {
	for i, b := range data {
		p := (*piece)(nil)
		if i < len(o.pieces) {
			p = o.pieces[i]
		}
		if p == nil {
			p = &piece{obj: o, h: o.pieceHandle(i), idx: i}
			o.addPiece(p)
		}
		p.size = int64(len(b))
		p.sha, p.shaKnown = sum256(b), true
		p.root, p.rootKnown = merkleRoot(b), true
	}
}

// task is one copy of one piece to put on some host.
type task struct{ idx int }

// planLocked lists the copies o lacks and the hosts that may take them, in
// rank order. For metadata every usable host without a good copy is a
// target of its own.
func (e *Engine) planLocked(o *object, usable []Candidate, online map[string]bool) ([]task, []Candidate) {
	if o.forgotten {
		return nil, nil
	}
	if o.meta() {
		var p *piece
		if len(o.pieces) > 0 {
			p = o.pieces[0]
		}
		var targets []Candidate
		for _, c := range usable {
			if p != nil {
				if r := p.at.get(c.ID()); r != nil && r.state == stateOK {
					continue
				}
			}
			targets = append(targets, c)
		}
		tasks := make([]task, len(targets))
		return tasks, targets
	}
	var tasks []task
	for i := 0; i < o.pieceCount(); i++ {
		have := 0
		if i < len(o.pieces) && o.pieces[i] != nil {
			have = e.healthyLocked(o.pieces[i], online)
		}
		for n := have; n < o.want(); n++ {
			tasks = append(tasks, task{idx: i})
		}
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	// Hosts that hold a piece, or may still hold one (bad, dropped, not
	// yet deleted), take no other. Hosts whose piece was deleted may take
	// one again, but only after every host without a past with this pack.
	used, past := map[string]bool{}, map[string]bool{}
	for _, p := range o.pieces {
		if p == nil {
			continue
		}
		for _, r := range p.at {
			id := r.host
			if r.state == stateDeleted {
				past[id] = true
			} else {
				used[id] = true
			}
		}
	}
	var targets, later []Candidate
	for _, c := range usable {
		switch {
		case used[c.ID()]:
		case past[c.ID()]:
			later = append(later, c)
		default:
			targets = append(targets, c)
		}
	}
	targets = append(targets, later...)
	if len(targets) == 0 {
		return nil, nil
	}
	return tasks, targets
}

// fillAll completes the placement of every object in the record.
func (e *Engine) fillAll(ctx context.Context, src store.Reader, given map[store.Handle][]byte, hosts []Candidate, st *syncState) error {
	e.mu.Lock()
	var objs []*object
	for _, o := range e.objs {
		if !o.forgotten {
			objs = append(objs, o)
		}
	}
	e.mu.Unlock()
	// Data before what refers to it: packs, then config and keys, then
	// indexes, then snapshots, then meta objects; each in a stable order.
	rank := map[store.Type]int{store.Pack: 0, store.Config: 1, store.Key: 2, store.Index: 3, store.Snapshot: 4, store.Meta: 5, store.Lock: 6}
	sort.Slice(objs, func(a, b int) bool {
		if objs[a].h.Type != objs[b].h.Type {
			return rank[objs[a].h.Type] < rank[objs[b].h.Type]
		}
		return objs[a].h.Name < objs[b].h.Name
	})
	for len(objs) > 0 {
		// One type at a time, its objects in parallel.
		n := 1
		for n < len(objs) && objs[n].h.Type == objs[0].h.Type {
			n++
		}
		e.fillGroup(ctx, src, given, objs[:n], hosts, st)
		objs = objs[n:]
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) fillGroup(ctx context.Context, src store.Reader, given map[store.Handle][]byte, objs []*object, hosts []Candidate, st *syncState) {
	work := make(chan *object)
	var wg sync.WaitGroup
	for w := 0; w < e.opts.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				before := st.snapshot()
				if err := e.fill(ctx, src, given[o.h], o, hosts, st); err != nil {
					st.fail(err)
					e.log.Warn("placement incomplete", "object", o.h.String(), "err", err)
				}
				if st.progress != nil && st.snapshot() != before {
					st.report()
				}
			}
		}()
	}
	for _, o := range objs {
		select {
		case work <- o:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}

// claim waits until no other call places o, then marks it busy; the
// returned function releases it.
func (e *Engine) claim(ctx context.Context, h store.Handle) (func(), error) {
	for {
		e.mu.Lock()
		ch := e.busy[h]
		if ch == nil {
			ch = make(chan struct{})
			e.busy[h] = ch
			e.mu.Unlock()
			return func() {
				e.mu.Lock()
				delete(e.busy, h)
				e.mu.Unlock()
				close(ch)
			}, nil
		}
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fill places the copies o lacks.
func (e *Engine) fill(ctx context.Context, src store.Reader, given []byte, o *object, hosts []Candidate, st *syncState) error {
	release, err := e.claim(ctx, o.h)
	if err != nil {
		return err
	}
	defer release()
	e.mu.Lock()
	online := onlineSet(hosts)
	tasks, targets := e.planLocked(o, e.rankLocked(hosts), online)
	e.mu.Unlock()
	ok := targets[:0:0]
	for _, c := range targets {
		if st.usable(c.ID()) {
			ok = append(ok, c)
		}
	}
	if o.meta() {
		tasks = tasks[:len(ok)]
	}
	targets = ok
	if len(tasks) == 0 || len(targets) == 0 {
		return nil
	}
	data, err := e.pieceBytes(ctx, src, given, o, hosts)
	if err != nil {
		return err
	}
	if o.meta() {
		// Every target takes the one piece.
		var wg sync.WaitGroup
		for _, c := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := e.put(ctx, c, o, 0, data[0], st); err != nil {
					st.fail(err)
					st.hostFailed(c.ID())
					e.log.Info("put failed", "host", c.ID(), "object", o.h.String(), "err", err)
				}
			}()
		}
		wg.Wait()
		return nil
	}
	// Tasks pull distinct hosts from one queue, so no host gets two
	// pieces of one pack.
	var qmu sync.Mutex
	queue := targets
	next := func(size int64) (Candidate, bool) {
		qmu.Lock()
		defer qmu.Unlock()
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			if (c.Info.FreeBytes > 0 && c.Info.FreeBytes < size) || !st.usable(c.ID()) {
				continue
			}
			return c, true
		}
		return Candidate{}, false
	}
	var wg sync.WaitGroup
	for _, t := range tasks {
		b := data[t.idx]
		if b == nil {
			continue // this piece could not be rebuilt (see pieceBytes)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, ok := next(int64(len(b)))
				if !ok {
					return // degraded: completed by a later call
				}
				err := e.put(ctx, c, o, t.idx, b, st)
				if err == nil {
					return
				}
				st.fail(err)
				st.hostFailed(c.ID())
				e.log.Info("put failed, trying another host", "host", c.ID(), "object", o.h.String(), "piece", t.idx, "err", err)
				if ctx.Err() != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	return nil
}

// pieceBytes returns the bytes of every piece of o, from given (the
// object's bytes, when the caller has them), the local repository when it
// has the object, otherwise rebuilt from the hosts.
// Pieces are built and recorded the first time.
func (e *Engine) pieceBytes(ctx context.Context, src store.Reader, given []byte, o *object, hosts []Candidate) (map[int][]byte, error) {
	var data []byte
	var err error
	switch {
	case given != nil:
		data = given
	case src != nil:
		data, err = store.ReadAll(ctx, src, o.h)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("read local %s: %w", o.h, err)
		}
	}
	if data == nil {
		data, err = e.fetchObject(ctx, o, hosts)
		if err != nil {
			return nil, err
		}
	}
	sum := sum256(data)
	e.mu.Lock()
	defer e.mu.Unlock()
	if o.shaKnown && sum != o.sha {
		if !o.meta() || o.h.Type != store.Config {
			return nil, fmt.Errorf("local %s: content does not match its hash: %w", o.h, ErrCorrupt)
		}
	}
	if o.meta() {
		if !o.shaKnown || sum != o.sha || len(o.pieces) == 0 || o.pieces[0] == nil {
			o.sha, o.shaKnown, o.size = sum, true, int64(len(data))
			if err := e.rewriteMetaLocked(ctx, o, data); err != nil {
				return nil, err
			}
		}
		return map[int][]byte{0: data}, nil
	}
	o.sha, o.shaKnown = sum, true
	if !o.red.Coded() {
		if o.size != int64(len(data)) || len(o.pieces) == 0 || o.pieces[0] == nil {
			o.size = int64(len(data))
			e.buildPiecesLocked(o, map[int][]byte{0: data})
			if err := e.db.saveObject(ctx, o); err != nil {
				return nil, fmt.Errorf("record %s: %w", o.h, err)
			}
		}
		return map[int][]byte{0: data}, nil
	}
	shards, err := EncodeShards(sum, data, o.red)
	if err != nil {
		return nil, err
	}
	out := map[int][]byte{}
	fresh := map[int][]byte{}
	for i, s := range shards {
		var p *piece
		if i < len(o.pieces) {
			p = o.pieces[i]
		}
		switch {
		case p == nil || !p.shaKnown:
			fresh[i] = s
			out[i] = s
		case p.sha == sum256(s):
			out[i] = s
		default:
			// Should never happen (encoding is deterministic); never put
			// a shard that differs from what the record says.
			e.log.Error("re-encoded shard differs from the record", "object", o.h.String(), "shard", i)
		}
	}
	if len(fresh) > 0 || o.size != int64(len(data)) {
		o.size = int64(len(data))
		e.buildPiecesLocked(o, fresh)
		if err := e.db.saveObject(ctx, o); err != nil {
			return nil, fmt.Errorf("record %s: %w", o.h, err)
		}
	}
	return out, nil
}

// ErrCorrupt says bytes did not match the hash they must have.
var ErrCorrupt = errors.New("content does not match its hash")

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// put sends piece idx of o to one host and records the placement.
func (e *Engine) put(ctx context.Context, c Candidate, o *object, idx int, b []byte, st *syncState) error {
	e.mu.Lock()
	p := o.pieces[idx]
	sum := p.sha
	until := e.now().Add(e.leaseFor(c))
	e.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, e.timeout(int64(len(b))))
	defer cancel()
	cr := &countingReader{r: bytesReader(b)}
	if err := c.Host.Put(pctx, p.h, int64(len(b)), sum, until, cr); err != nil {
		return fmt.Errorf("put %s on %s: %w", p.h, c.ID(), err)
	}
	st.sent(cr.n)
	e.mu.Lock()
	defer e.mu.Unlock()
	if p.sha != sum { // replaced meanwhile (host list changed): the put is stale
		return nil
	}
	rec := &copyRec{until: until, placed: e.now(), state: stateOK}
	e.setCopyLocked(p, e.internLocked(c.ID()), rec)
	if err := e.db.savePlacement(ctx, p, c.ID(), rec); err != nil {
		return fmt.Errorf("record placement of %s on %s: %w", p.h, c.ID(), err)
	}
	return nil
}
