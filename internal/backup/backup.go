// Package backup walks source paths and stores them in a repository as a
// snapshot: files are cut into content-defined chunks, deduplicated against
// everything the repository holds, and saved as blobs; each directory
// becomes a tree blob; the snapshot, signed by the owner, points at the
// root tree.
//
// The walk is concurrent and bounded: one goroutine walks directories in
// order, a fixed pool of workers reads files, and the saver below keeps a
// bounded number of packs in flight, so memory stays flat however large the
// source is. Files whose metadata matches the parent snapshot are not read.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-backup/cairn/internal/chunker"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
)

// Status is what happened to one entry.
type Status string

// Entry statuses.
const (
	StatusNew       Status = "new"
	StatusChanged   Status = "changed"
	StatusUnchanged Status = "unchanged"
	StatusFailed    Status = "failed"
)

// FileResult reports one entry of the backup.
type FileResult struct {
	Path    string // absolute path
	Type    string // repo.NodeFile, NodeDir, ...
	Size    int64
	Hash    string // hex content ID of regular files
	Status  Status
	Retried int // times re-read because it changed while being read
	Err     error
}

// Reporter receives results as the backup goes.
type Reporter interface {
	// File is called for each entry once it has been handed to the
	// repository (not yet durable). Calls may come from several goroutines
	// but never concurrently.
	File(FileResult)
	// Checkpoint says every entry reported before is durable: its packs
	// and their index are stored.
	Checkpoint()
}

// Progress is a reading of the counters, for a progress display.
type Progress struct {
	Files, Dirs int64
	Bytes       int64 // bytes of files done (read or unchanged)
	TotalFiles  int64 // found by the scanner so far
	TotalBytes  int64
	ScanDone    bool
	Errors      int64
	Current     string
	Elapsed     time.Duration
}

// Options say what to back up and how.
type Options struct {
	Paths         []string
	Excludes      []string
	ExcludeCaches bool
	Tags          []string
	Host          string
	// Full re-reads every file instead of trusting the parent's metadata.
	Full bool
	// Parent forces the parent snapshot (ID or prefix); empty picks the
	// latest snapshot of the same host and paths.
	Parent   string
	Reporter Reporter
	// OnProgress, if set, is called about four times a second; a scanner
	// then counts the totals ahead of the backup for an ETA.
	OnProgress func(Progress)
	// CheckpointInterval is how often everything so far is made durable
	// (default 5 minutes).
	CheckpointInterval time.Duration
	// Workers reading files (default: number of CPUs, at least 2).
	Workers int
	// ChangedRetries is how often a file that changes while being read is
	// read again (default 2).
	ChangedRetries int
	// Time of the snapshot (default now).
	Time time.Time
}

// Summary is what a backup did.
type Summary struct {
	repo.Summary
	SnapshotID string `json:"snapshot_id"`
	ParentID   string `json:"parent_id,omitempty"`
}

// ErrNoPaths is returned when no path was given.
var ErrNoPaths = errors.New("no paths to back up")

// Run backs up opts.Paths into r and saves a snapshot. It returns the
// summary even when some files failed (Summary.Failed > 0); an error means
// no snapshot was saved.
func Run(ctx context.Context, r *repo.Repository, opts Options) (*Summary, error) {
	start := time.Now()
	paths, err := cleanPaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	if opts.Workers <= 0 {
		opts.Workers = max(runtime.NumCPU(), 2)
	}
	if opts.ChangedRetries == 0 {
		opts.ChangedRetries = 2
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = 5 * time.Minute
	}
	excl, err := newExcluder(opts.Excludes, opts.ExcludeCaches)
	if err != nil {
		return nil, err
	}
	lock, err := r.LockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(ctx)
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}

	a := &archiver{
		r: r, opts: opts, excl: excl,
		params: chunker.Params{Min: r.Config().ChunkMin, Avg: r.Config().ChunkAvg, Max: r.Config().ChunkMax, Seed: r.Config().ChunkerSeed},
		jobs:   make(chan func(*worker), opts.Workers),
		users:  map[uint32]string{}, groups: map[uint32]string{},
	}
	var parent *repo.Snapshot
	if !opts.Full {
		parent, err = findParent(ctx, r, opts.Parent, opts.Host, paths)
		if err != nil {
			return nil, err
		}
	}
	a.startCheckpoints(ctx)
	var wg sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{params: a.params}
			for job := range a.jobs {
				job(w)
			}
		}()
	}
	stopProgress := a.startProgress(ctx, paths, start)

	var parentRoot *crypto.ID
	if parent != nil {
		parentRoot = &parent.Tree
	}
	rootCh := a.saveVirtualRoot(ctx, buildTrie(paths), parentRoot)
	res := <-rootCh
	close(a.jobs)
	wg.Wait()
	a.stopCheckpoints()
	stopProgress()
	if res.err == nil {
		res.err = ctx.Err()
	}
	if res.err != nil {
		r.Abort()
		return nil, res.err
	}
	if err := a.firstErr(); err != nil {
		r.Abort()
		return nil, err
	}
	if err := r.FlushFinal(ctx); err != nil {
		return nil, fmt.Errorf("store data: %w", err)
	}
	sum := a.summary()
	sum.StoredAdded = r.SaveStats().StoredBytes
	sum.DurationMS = time.Since(start).Milliseconds()
	when := opts.Time
	if when.IsZero() {
		when = r.Now()
	}
	uname := ""
	if u, err := user.Current(); err == nil {
		uname = u.Username
	}
	snap := &repo.Snapshot{
		Time: when, Host: opts.Host, Username: uname, Paths: paths, Tags: opts.Tags,
		Tree: *res.node.Subtree, Summary: &sum,
	}
	out := &Summary{Summary: sum}
	if parent != nil {
		snap.Parent = &parent.ID
		out.ParentID = parent.ID.String()
	}
	id, err := r.SaveSnapshot(ctx, snap)
	if err != nil {
		return nil, err
	}
	if opts.Reporter != nil {
		opts.Reporter.Checkpoint()
	}
	out.SnapshotID = id.String()
	return out, nil
}

// cleanPaths makes paths absolute and clean, drops duplicates and paths
// inside other given paths, and checks they exist.
func cleanPaths(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, ErrNoPaths
	}
	var out []string
	for _, p := range in {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		if _, err := os.Lstat(abs); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("path %s does not exist", p)
			}
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		out = append(out, abs)
	}
	sort.Strings(out)
	var kept []string
	for _, p := range out {
		if n := len(kept); n > 0 && (kept[n-1] == p || strings.HasPrefix(p, strings.TrimSuffix(kept[n-1], string(filepath.Separator))+string(filepath.Separator))) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, nil
}

func findParent(ctx context.Context, r *repo.Repository, ref, host string, paths []string) (*repo.Snapshot, error) {
	if ref != "" {
		return r.FindSnapshot(ctx, ref)
	}
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		s := snaps[i]
		sp := append([]string{}, s.Paths...)
		sort.Strings(sp)
		if s.Host == host && slices.Equal(sp, paths) {
			return s, nil
		}
	}
	return nil, nil
}

// worker is one file reader. Its chunker (a buffer of twice the largest
// chunk) is made on first use, so a run that reads no file allocates none.
type worker struct {
	params chunker.Params
	ch     *chunker.Chunker
}

func (w *worker) chunker(r io.Reader) *chunker.Chunker {
	if w.ch == nil {
		w.ch = chunker.New(r, w.params)
	} else {
		w.ch.Reset(r)
	}
	return w.ch
}

type result struct {
	node *repo.Node
	err  error // fatal: stops the backup
}

type archiver struct {
	r      *repo.Repository
	opts   Options
	excl   *excluder
	params chunker.Params
	jobs   chan func(*worker)

	// saveMu is held shared while blobs are saved and exclusively while a
	// checkpoint flushes, so a checkpoint sees no half-saved file.
	saveMu sync.RWMutex
	repMu  sync.Mutex
	errMu  sync.Mutex
	err    error
	stopCP chan struct{}
	cpDone chan struct{}
	uidMu  sync.Mutex
	users  map[uint32]string
	groups map[uint32]string

	files, dirs, links, others atomic.Int64
	newN, changedN, unchangedN atomic.Int64
	failed                     atomic.Int64
	bytes, bytesAdded          atomic.Int64
	scanFiles, scanBytes       atomic.Int64
	scanDone                   atomic.Bool
	current                    atomic.Value
}

func (a *archiver) setErr(err error) {
	a.errMu.Lock()
	if a.err == nil {
		a.err = err
	}
	a.errMu.Unlock()
}

func (a *archiver) firstErr() error {
	a.errMu.Lock()
	defer a.errMu.Unlock()
	return a.err
}

func (a *archiver) report(fr FileResult) {
	// The new/changed/unchanged counters count entries other than
	// folders; failures count whatever failed.
	status := fr.Status
	if fr.Type == repo.NodeDir && status != StatusFailed {
		status = ""
	}
	switch status {
	case StatusNew:
		a.newN.Add(1)
	case StatusChanged:
		a.changedN.Add(1)
	case StatusUnchanged:
		a.unchangedN.Add(1)
	case StatusFailed:
		a.failed.Add(1)
	}
	if a.opts.Reporter != nil {
		a.repMu.Lock()
		a.opts.Reporter.File(fr)
		a.repMu.Unlock()
	}
}

func (a *archiver) summary() repo.Summary {
	return repo.Summary{
		Files: int(a.files.Load()), Dirs: int(a.dirs.Load()), Links: int(a.links.Load()), Others: int(a.others.Load()),
		New: int(a.newN.Load()), Changed: int(a.changedN.Load()), Unchanged: int(a.unchangedN.Load()), Failed: int(a.failed.Load()),
		Bytes: a.bytes.Load(), BytesAdded: a.bytesAdded.Load(),
	}
}

func (a *archiver) startCheckpoints(ctx context.Context) {
	a.stopCP = make(chan struct{})
	a.cpDone = make(chan struct{})
	go func() {
		defer close(a.cpDone)
		t := time.NewTicker(a.opts.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-a.stopCP:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				a.saveMu.Lock()
				err := a.r.Flush(ctx)
				if err == nil && a.opts.Reporter != nil {
					a.repMu.Lock()
					a.opts.Reporter.Checkpoint()
					a.repMu.Unlock()
				}
				a.saveMu.Unlock()
				if err != nil {
					a.setErr(fmt.Errorf("checkpoint: %w", err))
				}
			}
		}
	}()
}

func (a *archiver) stopCheckpoints() {
	close(a.stopCP)
	<-a.cpDone
}

func (a *archiver) startProgress(ctx context.Context, paths []string, start time.Time) func() {
	if a.opts.OnProgress == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	go a.scan(ctx, paths)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				a.opts.OnProgress(a.progress(start))
				return
			case <-t.C:
				a.opts.OnProgress(a.progress(start))
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (a *archiver) progress(start time.Time) Progress {
	cur, _ := a.current.Load().(string)
	return Progress{
		Files: a.files.Load(), Dirs: a.dirs.Load(), Bytes: a.bytes.Load(),
		TotalFiles: a.scanFiles.Load(), TotalBytes: a.scanBytes.Load(), ScanDone: a.scanDone.Load(),
		Errors: a.failed.Load(), Current: cur, Elapsed: time.Since(start),
	}
}

// scan counts files and bytes ahead of the backup, for the ETA.
func (a *archiver) scan(ctx context.Context, paths []string) {
	for _, p := range paths {
		_ = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return nil
			}
			if d.IsDir() && a.excl.excludedDir(path) {
				return filepath.SkipDir
			}
			if d.Type().IsRegular() && !a.excl.excluded(path, d.Name()) {
				if fi, err := d.Info(); err == nil {
					a.scanFiles.Add(1)
					a.scanBytes.Add(fi.Size())
				}
			}
			return nil
		})
	}
	a.scanDone.Store(true)
}

func contentHash(ids []crypto.ID) string {
	return repo.ContentHash(&repo.Node{Type: repo.NodeFile, Content: ids}).String()
}
