// Package restore writes a snapshot, a subtree of one, or a single file
// back to the file system.
//
// One goroutine walks the snapshot's trees in order and decides what to do
// with each entry: create it, overwrite an older one, or leave an existing
// one alone (identical content, or newer than the snapshot's version unless
// Options.Overwrite). Folders, symlinks and special files are made by the
// walker; file content goes to a fixed pool of workers. Small files are
// handed out in batches and large files in pieces, so a worker reads the
// blobs of a batch or piece grouped by pack, with one ranged read for
// neighbouring blobs, and several workers write one large file at once.
// Memory stays bounded by the number of workers and the batch size.
//
// Every file is written to a temporary name in its folder, synced, given
// its metadata and renamed into place; a folder gets its metadata once
// everything inside it is done. Content that fails verification stops that
// file: its temporary file is removed, the entry is reported with the
// blob and pack, and Run returns an error. Wrong bytes are never written
// silently.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
)

// Action is what a restore did, or would do, with one entry.
type Action string

// Actions.
const (
	// ActionCreate: the entry did not exist and was created.
	ActionCreate Action = "create"
	// ActionOverwrite: an older entry (or any, with Overwrite) was replaced.
	ActionOverwrite Action = "overwrite"
	// ActionExisting: a folder that exists already was used as it is.
	ActionExisting Action = "existing"
	// ActionSkipIdentical: the entry is already there with the same
	// content; it is left untouched.
	ActionSkipIdentical Action = "skip-identical"
	// ActionSkipNewer: the entry on disk is newer than the snapshot's and
	// Overwrite was not given; it is left untouched.
	ActionSkipNewer Action = "skip-newer"
	// ActionSkipUnsupported: the entry cannot be made here (a socket, or a
	// device when not running as root).
	ActionSkipUnsupported Action = "skip-unsupported"
	// ActionFailed: the entry could not be restored; Entry.Err says why.
	ActionFailed Action = "failed"
)

// Entry reports one restored (or, in a dry run, planned) entry.
type Entry struct {
	// Path is where the entry lands on disk.
	Path string
	// Type is the node type (repo.NodeFile, repo.NodeDir, ...).
	Type   string
	Size   int64
	Action Action
	// Link is set for a hard link: the path it links to.
	Link string
	Err  error
}

// Progress is a reading of the counters, for a progress display.
type Progress struct {
	Files, Dirs int64
	Bytes       int64 // content bytes written
	// TotalBytes is the snapshot's size when the whole snapshot is
	// restored, else 0 (unknown).
	TotalBytes int64
	Errors     int64
	Elapsed    time.Duration
}

// Options say what to restore where.
type Options struct {
	// Target is the folder the snapshot's paths land below, with their
	// full path: /data/x restores to Target/data/x.
	Target string
	// Include is an absolute path inside the snapshot ("/data/x/file"):
	// only that file or subtree is restored. Empty or "/" means all.
	Include string
	// DryRun decides and reports every entry without writing anything.
	DryRun bool
	// Overwrite replaces existing entries even when they are newer than
	// the snapshot's version.
	Overwrite bool
	// Verify re-reads each written file and checks it against the
	// content IDs before it is renamed into place.
	Verify bool
	// Workers writing file content (default: 2 × CPUs, at least 4).
	Workers int
	// OnProgress, if set, is called about four times a second.
	OnProgress func(Progress)
	// OnEntry, if set, is called for every entry once it is done (in a
	// dry run: once decided). Calls never overlap.
	OnEntry func(Entry)
}

// EntryError is one entry that could not be restored.
type EntryError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Summary counts what a restore did.
type Summary struct {
	DryRun           bool          `json:"dry_run"`
	Files            int           `json:"files"`
	Dirs             int           `json:"dirs"`
	Symlinks         int           `json:"symlinks"`
	Hardlinks        int           `json:"hardlinks"`
	Others           int           `json:"others"`
	Created          int           `json:"created"`
	Overwritten      int           `json:"overwritten"`
	SkippedIdentical int           `json:"skipped_identical"`
	SkippedNewer     int           `json:"skipped_newer"`
	Unsupported      int           `json:"unsupported"`
	Failed           int           `json:"failed"`
	Bytes            int64         `json:"bytes"`
	Errors           []EntryError  `json:"errors,omitempty"`
	Duration         time.Duration `json:"duration_ns"`
}

// finishers is the number of goroutines syncing and renaming files per
// worker.
const finishers = 4

// maxErrors bounds the errors kept in a Summary; Failed counts them all.
const maxErrors = 1000

// Errors callers can test for with errors.Is.
var (
	// ErrIncomplete: some entries could not be restored (the returned
	// error also wraps the first entry's error).
	ErrIncomplete = errors.New("restore incomplete")
	// ErrNotFound: Include names no entry of the snapshot.
	ErrNotFound = errors.New("path not found in snapshot")
	// ErrNoTarget: Options.Target is empty.
	ErrNoTarget = errors.New("no target folder given")
)

// Run restores snap (or the part Options.Include names) below
// opts.Target. It returns the summary and, when some entries failed, an
// error wrapping ErrIncomplete and the first failure.
func Run(ctx context.Context, r *repo.Repository, snap *repo.Snapshot, opts Options) (*Summary, error) {
	start := time.Now()
	if opts.Target == "" {
		return nil, ErrNoTarget
	}
	target, err := filepath.Abs(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", opts.Target, err)
	}
	if opts.Workers <= 0 {
		opts.Workers = max(2*runtime.NumCPU(), 4)
	}
	lock, err := r.LockShared(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(context.WithoutCancel(ctx))
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("load index: %w", err)
	}
	chain, err := FindPath(ctx, r, snap.Tree, opts.Include)
	if err != nil {
		return nil, err
	}
	if !opts.DryRun {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return nil, fmt.Errorf("create target: %w", err)
		}
	}

	rs := &restorer{
		r: r, opts: opts, root: os.Geteuid() == 0,
		links:  map[linkKey]*linkState{},
		jobs:   make(chan job, opts.Workers),
		finish: make(chan *fileState, finishers*opts.Workers),
		sum:    Summary{DryRun: opts.DryRun},
	}
	if len(chain) == 0 && snap.Summary != nil {
		rs.totalBytes = snap.Summary.Bytes
	}
	// Workers read and write content; finishers sync and rename files.
	// Syncs wait on the disk, not the CPU: many at once let the file
	// system commit them together.
	var wg, fwg sync.WaitGroup
	if !opts.DryRun {
		for i := 0; i < opts.Workers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := &worker{rs: rs}
				for j := range rs.jobs {
					w.process(ctx, j)
				}
			}()
		}
		for i := 0; i < finishers*opts.Workers; i++ {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				w := &worker{rs: rs, finisher: true}
				for f := range rs.finish {
					rs.finishFile(ctx, f, w)
				}
			}()
		}
	}
	stopProgress := rs.startProgress(start)

	top := newDirState(target, nil, nil)
	top.snapPath = "/"
	rs.above = foldersAbove(snap.Paths, opts.Include)
	if len(chain) == 0 {
		rs.walkTree(ctx, top, snap.Tree)
	} else {
		// Folders above the included path are made with their metadata too.
		ds := top
		var entered []*dirState
		for _, n := range chain[:len(chain)-1] {
			ds = rs.enterDir(ds, asFolder(n))
			if ds == nil {
				break
			}
			entered = append(entered, ds)
		}
		if ds != nil {
			rs.restoreNode(ctx, ds, chain[len(chain)-1])
		}
		for i := len(entered) - 1; i >= 0; i-- {
			entered[i].release(rs)
		}
	}
	rs.flushBatch()
	close(rs.jobs)
	wg.Wait()
	close(rs.finish)
	fwg.Wait()
	top.release(rs)
	stopProgress()

	rs.mu.Lock()
	sum := rs.sum
	first := rs.firstErr
	rs.mu.Unlock()
	sum.Duration = time.Since(start)
	if err := ctx.Err(); err != nil {
		return &sum, err
	}
	if sum.Failed > 0 {
		return &sum, fmt.Errorf("%w: %d entries failed, first: %w", ErrIncomplete, sum.Failed, first)
	}
	return &sum, nil
}

// FindPath follows an absolute path inside a snapshot from its root tree
// and returns the nodes on the way, the named entry last. "" and "/" yield
// no nodes; a path that is not there is ErrNotFound.
func FindPath(ctx context.Context, r *repo.Repository, root crypto.ID, include string) ([]*repo.Node, error) {
	include = path.Clean("/" + filepath.ToSlash(include))
	if include == "/" {
		return nil, nil
	}
	var chain []*repo.Node
	tree := root
	parts := strings.Split(strings.TrimPrefix(include, "/"), "/")
	for i, part := range parts {
		t, err := r.LoadTree(ctx, tree)
		if err != nil {
			return nil, fmt.Errorf("load tree of %s: %w", "/"+strings.Join(parts[:i], "/"), err)
		}
		n := t.Find(part)
		if n == nil {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, include)
		}
		chain = append(chain, n)
		if i < len(parts)-1 {
			if n.Subtree == nil {
				return nil, fmt.Errorf("%w: %s (%s is not a folder)", ErrNotFound, include, "/"+strings.Join(parts[:i+1], "/"))
			}
			tree = *n.Subtree
		}
	}
	return chain, nil
}

type linkKey struct{ dev, ino uint64 }

// restorer is the state of one Run.
type restorer struct {
	r          *repo.Repository
	opts       Options
	root       bool // running as root: owners and devices are restored
	totalBytes int64

	jobs       chan job
	finish     chan *fileState
	batch      job
	batchBytes int64

	links map[linkKey]*linkState // used by the walker only
	// above holds the snapshot paths of the folders above the backed-up
	// paths and above Include: existing ones are not changed.
	above map[string]bool
	zeros sync.Map // IDs of blobs known to be all zeros

	files, dirs, bytes, errs atomic.Int64

	mu       sync.Mutex // guards sum, firstErr and OnEntry calls
	sum      Summary
	firstErr error
}

// dirState tracks a folder being restored: its metadata is set when the
// walker and every file inside it are done.
type dirState struct {
	path    string
	node    *repo.Node // nil for the target itself
	parent  *dirState
	pending atomic.Int64
	// absent is set in a dry run for a folder that would be created:
	// nothing below it exists yet.
	absent bool
	// snapPath is the folder's path inside the snapshot.
	snapPath string
}

func newDirState(p string, n *repo.Node, parent *dirState) *dirState {
	ds := &dirState{path: p, node: n, parent: parent}
	ds.pending.Store(1) // the walker's
	if parent != nil {
		parent.pending.Add(1)
	}
	return ds
}

// release drops one reference; the last sets the folder's metadata.
func (ds *dirState) release(rs *restorer) {
	if ds.pending.Add(-1) != 0 {
		return
	}
	if !rs.opts.DryRun {
		if ds.node != nil {
			if err := rs.applyMeta(ds.path, ds.node); err != nil {
				rs.fail(ds.path, repo.NodeDir, err)
			}
		}
		syncDir(ds.path)
	}
	if ds.parent != nil {
		ds.parent.release(rs)
	}
}

func (rs *restorer) report(e Entry) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	s := &rs.sum
	switch {
	case e.Link != "":
		s.Hardlinks++
	case e.Type == repo.NodeFile:
		s.Files++
	case e.Type == repo.NodeDir:
		s.Dirs++
	case e.Type == repo.NodeSymlink:
		s.Symlinks++
	default:
		s.Others++
	}
	switch e.Action {
	case ActionCreate:
		s.Created++
	case ActionOverwrite:
		s.Overwritten++
	case ActionSkipIdentical:
		s.SkippedIdentical++
	case ActionSkipNewer:
		s.SkippedNewer++
	case ActionSkipUnsupported:
		s.Unsupported++
	case ActionFailed:
		s.Failed++
		rs.errs.Add(1)
		if rs.firstErr == nil {
			rs.firstErr = e.Err
		}
		if len(s.Errors) < maxErrors {
			s.Errors = append(s.Errors, EntryError{Path: e.Path, Message: e.Err.Error()})
		}
	}
	if e.Type == repo.NodeFile && e.Link == "" && (e.Action == ActionCreate || e.Action == ActionOverwrite) {
		s.Bytes += e.Size
	}
	if rs.opts.OnEntry != nil {
		rs.opts.OnEntry(e)
	}
}

// fail reports an entry that could not be restored. err should name the
// path already or be a plain cause; fail adds the path when missing.
func (rs *restorer) fail(p, typ string, err error) {
	if !strings.Contains(err.Error(), p) {
		err = fmt.Errorf("%s: %w", p, err)
	}
	rs.report(Entry{Path: p, Type: typ, Action: ActionFailed, Err: err})
}

func (rs *restorer) startProgress(start time.Time) func() {
	if rs.opts.OnProgress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	read := func() Progress {
		return Progress{Files: rs.files.Load(), Dirs: rs.dirs.Load(), Bytes: rs.bytes.Load(),
			TotalBytes: rs.totalBytes, Errors: rs.errs.Load(), Elapsed: time.Since(start)}
	}
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				rs.opts.OnProgress(read())
				return
			case <-t.C:
				rs.opts.OnProgress(read())
			}
		}
	}()
	return func() { close(stop); <-done }
}

// walkTree restores the entries of a tree into ds.
func (rs *restorer) walkTree(ctx context.Context, ds *dirState, id crypto.ID) {
	t, err := rs.r.LoadTree(ctx, id)
	if err != nil {
		rs.fail(ds.path, repo.NodeDir, fmt.Errorf("read folder listing: %w", err))
		return
	}
	for _, n := range t.Nodes {
		if ctx.Err() != nil {
			return
		}
		rs.restoreNode(ctx, ds, n)
	}
}

func (rs *restorer) restoreNode(ctx context.Context, parent *dirState, n *repo.Node) {
	p := filepath.Join(parent.path, n.Name)
	if n.Subtree != nil {
		// Older backups stored a folder above a backed-up path as the
		// symlink it was reached through, with the folder's subtree.
		n = asFolder(n)
	}
	switch n.Type {
	case repo.NodeDir:
		ds := rs.enterDir(parent, n)
		if ds == nil {
			return
		}
		if n.Subtree != nil {
			rs.walkTree(ctx, ds, *n.Subtree)
		}
		ds.release(rs)
	case repo.NodeFile:
		rs.planFile(ctx, parent, n, p)
	case repo.NodeSymlink, repo.NodeFIFO, repo.NodeDevice, repo.NodeChar:
		rs.special(parent, n, p)
	case repo.NodeSocket:
		rs.report(Entry{Path: p, Type: n.Type, Action: ActionSkipUnsupported})
	default:
		rs.fail(p, n.Type, fmt.Errorf("unknown entry type %q", n.Type))
	}
}

// asFolder turns a node with a subtree into a plain folder; folders are
// returned as they are.
func asFolder(n *repo.Node) *repo.Node {
	if n.Type == repo.NodeDir {
		return n
	}
	c := *n
	c.Type, c.Mode, c.LinkTarget = repo.NodeDir, uint32(fs.ModeDir|0o755), ""
	return &c
}

// newer reports whether what is on disk is newer than the snapshot's
// version and must be kept.
func (rs *restorer) newer(fi fs.FileInfo, n *repo.Node) bool {
	return !rs.opts.Overwrite && fi.ModTime().After(n.ModTime)
}

// enterDir makes a folder (or finds it there) and returns its state, or
// nil when its subtree is skipped.
func (rs *restorer) enterDir(parent *dirState, n *repo.Node) *dirState {
	p := filepath.Join(parent.path, n.Name)
	snapPath := path.Join(parent.snapPath, n.Name)
	above := rs.above[snapPath]
	action := ActionCreate
	fi, err := lstat(parent, p)
	switch {
	case err == nil && fi.IsDir():
		action = ActionExisting
	case err == nil && above && fi.Mode()&fs.ModeSymlink != 0 && isDir(p):
		// A symlink to a folder above what is restored (/tmp →
		// /private/tmp) is followed, never replaced.
		action = ActionExisting
	case err == nil:
		if rs.newer(fi, n) {
			rs.report(Entry{Path: p, Type: repo.NodeDir, Action: ActionSkipNewer})
			return nil
		}
		action = ActionOverwrite
		if !rs.opts.DryRun {
			if err := os.Remove(p); err != nil {
				rs.fail(p, repo.NodeDir, fmt.Errorf("remove what is in the way: %w", err))
				return nil
			}
		}
	case !errors.Is(err, fs.ErrNotExist):
		rs.fail(p, repo.NodeDir, err)
		return nil
	}
	if !rs.opts.DryRun && action != ActionExisting {
		// Owner-writable until its metadata is set at the end.
		if err := os.Mkdir(p, 0o700); err != nil {
			rs.fail(p, repo.NodeDir, err)
			return nil
		}
	}
	rs.dirs.Add(1)
	rs.report(Entry{Path: p, Type: repo.NodeDir, Action: action})
	ds := newDirState(p, n, parent)
	ds.absent = rs.opts.DryRun && action != ActionExisting
	ds.snapPath = snapPath
	if action == ActionExisting && above {
		// A folder that only leads to what is restored and is there
		// already keeps its own metadata.
		ds.node = nil
	}
	return ds
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// foldersAbove returns the folders strictly above each path, in the
// slash-separated form paths have inside a snapshot.
func foldersAbove(paths []string, include string) map[string]bool {
	out := map[string]bool{}
	for _, p := range append(paths, include) {
		if p == "" {
			continue
		}
		p = path.Clean("/" + filepath.ToSlash(p))
		if vol := filepath.VolumeName(p[1:]); vol != "" {
			p = "/" + strings.TrimSuffix(vol, ":") + p[1+len(vol):]
		}
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			out[d] = true
		}
	}
	return out
}

// syncDir makes the renames into a finished folder durable. It is best
// effort: some platforms and file systems cannot sync a folder, and the
// files themselves were synced before they were renamed.
func syncDir(p string) {
	d, err := os.Open(p)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

// lstat looks at what is on disk at p, in the folder parent.
func lstat(parent *dirState, p string) (fs.FileInfo, error) {
	if parent.absent {
		return nil, fs.ErrNotExist
	}
	return os.Lstat(p)
}
