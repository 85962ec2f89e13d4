// Package runner runs one backup of a source: the pre hook, the backup
// engine, the post hook, the record of the run and of its files in the
// catalog, and the source's retention policy.
//
// A file's record is committed to the catalog only once the engine reports
// a checkpoint, that is once the file's data is durable in the repository;
// so the catalog never shows a file as saved that is not, even if the
// process is killed in the middle of a run. The next run of the source
// resumes the interrupted one (see catalog.BeginRun): it keeps its kind,
// and the data that was already stored is not stored again.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/retention"
)

// ErrPartial is returned (wrapped) by Run when the run saved a snapshot but
// some files could not be read.
var ErrPartial = errors.New("some files could not be read")

// Forget applies a source's retention policy with retention.Forget: it
// removes the snapshots of host and paths the policy does not keep (the
// data stays until prune).
func Forget(ctx context.Context, r *repo.Repository, p catalog.Retention, host string, paths []string) ([]string, error) {
	return retention.Forget(ctx, r, retention.Policy{
		Last: p.Last, Hourly: p.Hourly, Daily: p.Daily, Weekly: p.Weekly, Monthly: p.Monthly, Yearly: p.Yearly,
		Within: p.Within,
	}, host, paths)
}

// ForgetFunc applies a retention policy to the snapshots of one host and
// set of paths and returns the IDs of the snapshots it removed.
type ForgetFunc func(ctx context.Context, r *repo.Repository, p catalog.Retention, host string, paths []string) ([]string, error)

// Runner runs sources. Set the fields, then call Run; a Runner may run
// several sources at once (the catalog refuses two runs of one source).
type Runner struct {
	Catalog *catalog.Catalog
	Repo    *repo.Repository
	// Host is the host name recorded in snapshots; the machine's if "".
	Host string
	// Forget applies retention after a run; retention.Forget if nil.
	Forget ForgetFunc
	// HookOutput receives the output of hooks; it is discarded if nil.
	// (The last lines of a failing hook's output go into the run's error.)
	HookOutput io.Writer
	// HookTimeout bounds each hook; 1 hour if zero.
	HookTimeout time.Duration
	// CheckpointInterval is passed to the engine; its default if zero.
	CheckpointInterval time.Duration
	// Logger; slog.Default if nil.
	Logger *slog.Logger

	// afterCheckpoint, if set, is called after each checkpoint is
	// committed with the number of records committed so far (tests use it
	// to kill the process mid-run).
	afterCheckpoint func(committed int)
}

// Options tune one run.
type Options struct {
	// Full asks for a full run: every file re-read and re-hashed.
	Full bool
	// OnProgress is passed to the engine.
	OnProgress func(backup.Progress)
}

// Run runs the named source once and records it. It returns the recorded
// run (nil only if the run could not even be started) and an error when
// the run is not ok: wrapping ErrPartial for a partial run, the cause for a
// failed or interrupted one, and the post hook's or retention's error when
// only they failed (the run's status then stays ok or partial and its
// error field says what went wrong).
func (r *Runner) Run(ctx context.Context, source string, opts Options) (*catalog.Run, error) {
	log := r.Logger
	if log == nil {
		log = slog.Default()
	}
	src, err := r.Catalog.Source(ctx, source)
	if err != nil {
		return nil, err
	}
	run, err := r.Catalog.BeginRun(ctx, source, catalog.BeginOptions{Full: opts.Full})
	if err != nil {
		return nil, err
	}
	log.Info("run started", "source", source, "run", run.ID, "kind", run.Kind, "resumes", run.ResumedFrom)
	// The record must be finished even when ctx is cancelled.
	bg := context.WithoutCancel(ctx)
	host := r.Host
	if host == "" {
		host, _ = os.Hostname()
	}
	env := []string{
		"CAIRN_SOURCE=" + source,
		fmt.Sprintf("CAIRN_RUN_ID=%d", run.ID),
		"CAIRN_RUN_KIND=" + string(run.Kind),
	}

	var (
		runErr error
		sum    *backup.Summary
		fin    catalog.Finish
	)
	if src.PreHook != "" {
		if err := r.hook(ctx, "pre", src.PreHook, append(env, "CAIRN_HOOK=pre")); err != nil {
			runErr = fmt.Errorf("pre hook: %w", err)
		}
	}
	if runErr == nil {
		rep := &reporter{ctx: bg, cat: r.Catalog, runID: run.ID, after: r.afterCheckpoint}
		sum, err = backup.Run(ctx, r.Repo, backup.Options{
			Paths: src.Paths, Excludes: src.Excludes, ExcludeCaches: true, Host: host,
			Full: run.Kind == catalog.KindFull, Reporter: rep, OnProgress: opts.OnProgress,
			CheckpointInterval: r.CheckpointInterval, Tags: []string{"source=" + source},
		})
		if err == nil {
			// A successful Run ends with a checkpoint; make sure nothing
			// reported stays behind.
			rep.Checkpoint()
			err = rep.error()
			if err != nil {
				err = fmt.Errorf("record files: %w", err)
			}
		} else {
			err = fmt.Errorf("backup: %w", err)
		}
		runErr = err
		fin.Counts = rep.counts()
	}

	switch {
	case runErr != nil && ctx.Err() != nil:
		fin.Status = catalog.StatusInterrupted
	case runErr != nil:
		fin.Status = catalog.StatusFailed
	case sum.Failed > 0:
		fin.Status = catalog.StatusPartial
	default:
		fin.Status = catalog.StatusOK
	}
	if runErr != nil {
		fin.Error = runErr.Error()
	}
	if sum != nil {
		fin.SnapshotID = sum.SnapshotID
		fin.Counts = catalog.Counts{
			Files: int64(sum.Files), Dirs: int64(sum.Dirs), Links: int64(sum.Links), Others: int64(sum.Others),
			Bytes: sum.Bytes, BytesAdded: sum.BytesAdded,
			New: int64(sum.New), Changed: int64(sum.Changed), Unchanged: int64(sum.Unchanged), Failed: int64(sum.Failed),
		}
	}

	var extra []error // post hook and retention: they do not change the status
	if src.PostHook != "" {
		if err := r.hook(bg, "post", src.PostHook, append(env, "CAIRN_HOOK=post", "CAIRN_RUN_STATUS="+string(fin.Status))); err != nil {
			extra = append(extra, fmt.Errorf("post hook: %w", err))
		}
	}
	if sum != nil && !src.Retention.IsZero() {
		forget := r.Forget
		if forget == nil {
			forget = Forget
		}
		// The snapshot's own paths: the engine drops paths inside others.
		paths := src.Paths
		if snap, err := r.Repo.FindSnapshot(bg, sum.SnapshotID); err == nil {
			paths = snap.Paths
		}
		if removed, err := forget(bg, r.Repo, src.Retention, host, paths); err != nil {
			extra = append(extra, fmt.Errorf("retention: %w", err))
		} else if len(removed) > 0 {
			log.Info("retention removed snapshots", "source", source, "run", run.ID, "removed", len(removed))
		}
	}
	extraErr := errors.Join(extra...)
	if extraErr != nil {
		if fin.Error != "" {
			fin.Error += "; "
		}
		fin.Error += strings.ReplaceAll(extraErr.Error(), "\n", "; ")
	}
	if err := r.Catalog.FinishRun(bg, run.ID, fin); err != nil {
		return run, errors.Join(runErr, err)
	}
	if got, err := r.Catalog.GetRun(bg, run.ID); err == nil {
		run = got
	}
	log.Info("run finished", "source", source, "run", run.ID, "status", run.Status,
		"files", run.Files, "new", run.New, "changed", run.Changed, "failed", run.Failed)
	switch {
	case runErr != nil:
		return run, fmt.Errorf("run %d of %s: %w", run.ID, source, runErr)
	case extraErr != nil:
		return run, fmt.Errorf("run %d of %s: %w", run.ID, source, extraErr)
	case fin.Status == catalog.StatusPartial:
		return run, fmt.Errorf("run %d of %s: %d files: %w", run.ID, source, run.Failed, ErrPartial)
	}
	return run, nil
}

// spillAt is how many file records the reporter holds in memory before it
// stages them in the catalog, so memory stays flat between checkpoints.
const spillAt = 20000

// reporter records the engine's results in the catalog: it buffers them
// and commits them at each checkpoint, when their data is durable.
type reporter struct {
	ctx     context.Context // the Reporter interface carries none
	cat     *catalog.Catalog
	runID   int64
	after   func(committed int)
	spillAt int // 0: the package's spillAt

	mu        sync.Mutex
	pending   []catalog.RunFile
	staged    int // records staged since the last checkpoint
	committed int
	c         catalog.Counts
	err       error
}

var _ backup.Reporter = (*reporter)(nil)

// File counts the entry and buffers its record if it is one the catalog
// keeps (see RecordOf).
func (p *reporter) File(fr backup.FileResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	count(&p.c, fr)
	rf, ok := RecordOf(fr)
	if !ok || p.err != nil {
		return
	}
	p.pending = append(p.pending, rf)
	limit := p.spillAt
	if limit <= 0 {
		limit = spillAt
	}
	if len(p.pending) >= limit {
		if err := p.cat.Stage(p.ctx, p.runID, p.pending); err != nil {
			p.err = err
		}
		p.staged += len(p.pending)
		p.pending = p.pending[:0]
	}
}

// Checkpoint commits the buffered and staged records in one transaction.
func (p *reporter) Checkpoint() {
	p.mu.Lock()
	if p.err == nil {
		c := p.c
		if err := p.cat.Checkpoint(p.ctx, p.runID, p.pending, &c); err != nil {
			p.err = err
		} else {
			p.committed += p.staged + len(p.pending)
		}
		p.staged = 0
		p.pending = p.pending[:0]
	}
	after, committed := p.after, p.committed
	p.mu.Unlock()
	if after != nil {
		after(committed)
	}
}

func (p *reporter) error() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *reporter) counts() catalog.Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.c
}

func count(c *catalog.Counts, fr backup.FileResult) {
	switch fr.Type {
	case repo.NodeFile:
		c.Files++
	case repo.NodeDir:
		c.Dirs++
	case repo.NodeSymlink:
		c.Links++
	case "":
	default:
		c.Others++
	}
	if fr.Status != backup.StatusFailed {
		c.Bytes += fr.Size
	}
	if fr.Type == repo.NodeDir && fr.Status != backup.StatusFailed {
		return
	}
	switch fr.Status {
	case backup.StatusNew:
		c.New++
	case backup.StatusChanged:
		c.Changed++
	case backup.StatusUnchanged:
		c.Unchanged++
	case backup.StatusFailed:
		c.Failed++
	}
}

// RecordOf maps an engine result to the catalog record kept for it. The
// catalog keeps every new, changed, failed or changed-while-read entry
// other than folders (and folders that failed); unchanged entries and
// folders are only counted.
func RecordOf(fr backup.FileResult) (catalog.RunFile, bool) {
	rf := catalog.RunFile{Path: fr.Path, Type: fr.Type, Size: fr.Size, Hash: fr.Hash}
	if rf.Type == "" {
		rf.Type = "unknown"
	}
	switch {
	case fr.Status == backup.StatusFailed:
		rf.Result = catalog.ResultFailed
		rf.Message = "failed"
		if fr.Err != nil {
			rf.Message = fr.Err.Error()
		}
		if fr.Retried > 0 {
			rf.Message += fmt.Sprintf(" (read %d times)", fr.Retried+1)
		}
		return rf, true
	case fr.Type == repo.NodeDir:
		return rf, false
	case fr.Retried > 0 || errors.Is(fr.Err, backup.ErrChangedWhileRead) ||
		(fr.Err != nil && fr.Err.Error() == backup.ErrChangedWhileRead.Error()):
		rf.Result = catalog.ResultRetried
		if fr.Err != nil {
			rf.Message = fmt.Sprintf("kept changing while read, saved as last read (read %d times)", fr.Retried+1)
		} else {
			rf.Message = fmt.Sprintf("changed while read, saved a consistent read (read %d times)", fr.Retried+1)
		}
		return rf, true
	case fr.Status == backup.StatusNew:
		rf.Result = catalog.ResultNew
	case fr.Status == backup.StatusChanged:
		rf.Result = catalog.ResultChanged
	default:
		return rf, false
	}
	if fr.Err != nil {
		rf.Message = fr.Err.Error()
	}
	return rf, true
}
