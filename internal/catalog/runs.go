package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Counts are a run's tallies of entries and results.
type Counts struct {
	Files      int64 `json:"files"`
	Dirs       int64 `json:"dirs"`
	Links      int64 `json:"links"`
	Others     int64 `json:"others"`
	Bytes      int64 `json:"bytes"`
	BytesAdded int64 `json:"bytes_added"`
	New        int64 `json:"new"`
	Changed    int64 `json:"changed"`
	Unchanged  int64 `json:"unchanged"`
	Failed     int64 `json:"failed"`
}

// Run is one backup of a source.
type Run struct {
	ID          int64     `json:"id"`
	Source      string    `json:"source"`
	Kind        Kind      `json:"kind"`
	Status      Status    `json:"status"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	ResumedFrom int64     `json:"resumed_from,omitempty"` // the interrupted run this one resumes
	Counts
	SnapshotID string `json:"snapshot_id,omitempty"`
	Error      string `json:"error,omitempty"`
}

// RunFile is the record of one file of a run.
type RunFile struct {
	Path    string `json:"path"`
	Type    string `json:"type"`
	Size    int64  `json:"size"`
	Hash    string `json:"hash,omitempty"`
	Result  Result `json:"result"`
	Message string `json:"message"`
}

const runCols = `id, source, kind, status, started, finished, resumed_from,
	files, dirs, links, others, bytes, bytes_added, new, changed, unchanged, failed, snapshot_id, error`

func scanRun(row rowScanner) (*Run, error) {
	var r Run
	var started, finished, resumed sql.NullInt64
	err := row.Scan(&r.ID, &r.Source, &r.Kind, &r.Status, &started, &finished, &resumed,
		&r.Files, &r.Dirs, &r.Links, &r.Others, &r.Bytes, &r.BytesAdded,
		&r.New, &r.Changed, &r.Unchanged, &r.Failed, &r.SnapshotID, &r.Error)
	if err != nil {
		return nil, err
	}
	r.Started, r.Finished = fromMS(started), fromMS(finished)
	r.ResumedFrom = resumed.Int64
	return &r, nil
}

// BeginOptions tune BeginRun.
type BeginOptions struct {
	// Full asks for a full run even when an incremental one would do.
	Full bool
}

// BeginRun records the start of a run of the named source and returns it.
//
// The kind is decided here, in the same transaction that checks for a run
// in progress: a run is full when asked for, when the source has no
// completed run (ok or partial) yet, or when it resumes an interrupted full
// run. A run resumes the source's latest run when that one was interrupted.
// BeginRun returns ErrRunning if a live process is running the source.
func (c *Catalog) BeginRun(ctx context.Context, source string, opts BeginOptions) (*Run, error) {
	now := c.now()
	var run *Run
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var srcID int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM sources WHERE name = ?`, source).Scan(&srcID); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if err := c.markInterrupted(ctx, tx, source); err != nil {
			return err
		}
		var running int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE source = ? AND status = 'running'`, source).Scan(&running); err != nil {
			return err
		}
		if running > 0 {
			return ErrRunning
		}
		var completed int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM runs WHERE source = ? AND status IN ('ok','partial')`, source).Scan(&completed); err != nil {
			return err
		}
		kind := KindIncremental
		if opts.Full || completed == 0 {
			kind = KindFull
		}
		var resumed sql.NullInt64
		var lastID int64
		var lastStatus Status
		var lastKind Kind
		err := tx.QueryRowContext(ctx, `SELECT id, status, kind FROM runs WHERE source = ? ORDER BY id DESC LIMIT 1`, source).
			Scan(&lastID, &lastStatus, &lastKind)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case lastStatus == StatusInterrupted:
			resumed = sql.NullInt64{Int64: lastID, Valid: true}
			if lastKind == KindFull {
				kind = KindFull
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO runs (source_id, source, kind, status, started, resumed_from, owner_host, owner_boot, owner_pid, owner_start)
			VALUES (?,?,?,?,?,?,?,?,?,?)`, srcID, source, kind, StatusRunning, now.UnixMilli(), resumed,
			c.self.host, c.self.boot, c.self.pid, c.self.start)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		run = &Run{ID: id, Source: source, Kind: kind, Status: StatusRunning,
			Started: time.UnixMilli(now.UnixMilli()).UTC(), ResumedFrom: resumed.Int64}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("begin run of %s: %w", source, err)
	}
	return run, nil
}

// batchRows is how many run files go into one INSERT statement.
const batchRows = 200

func validFiles(files []RunFile) error {
	for i := range files {
		if !files[i].Result.Valid() {
			return fmt.Errorf("%s: unknown result %q", files[i].Path, files[i].Result)
		}
	}
	return nil
}

// Stage stores records of files that are not durable yet, so a caller
// need not hold them all in memory between two checkpoints. They are not
// part of the run until the next Checkpoint moves them there.
func (c *Catalog) Stage(ctx context.Context, runID int64, files []RunFile) error {
	if err := validFiles(files); err != nil {
		return fmt.Errorf("stage files of run %d: %w", runID, err)
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		return insertRunFiles(ctx, tx, "run_files_staged", runID, files)
	})
	if err != nil {
		return fmt.Errorf("stage files of run %d: %w", runID, err)
	}
	return nil
}

// Checkpoint commits, in one transaction, the records of files whose data
// is now durable in the repository — those staged before and those given
// here, in that order — and the run's progress so far (nil leaves the counts
// as they are). Call it each time the backup engine reports a checkpoint;
// never for files whose data may still be lost.
func (c *Catalog) Checkpoint(ctx context.Context, runID int64, files []RunFile, progress *Counts) error {
	if err := validFiles(files); err != nil {
		return fmt.Errorf("checkpoint run %d: %w", runID, err)
	}
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO run_files (run_id, path, type, size, hash, result, message)
			SELECT run_id, path, type, size, hash, result, message FROM run_files_staged WHERE run_id = ? ORDER BY rowid`, runID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM run_files_staged WHERE run_id = ?`, runID); err != nil {
			return err
		}
		if err := insertRunFiles(ctx, tx, "run_files", runID, files); err != nil {
			return err
		}
		if progress != nil {
			if err := setCounts(ctx, tx, runID, progress); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("checkpoint run %d: %w", runID, err)
	}
	return nil
}

func insertRunFiles(ctx context.Context, tx *sql.Tx, table string, runID int64, files []RunFile) error {
	if len(files) == 0 {
		return nil
	}
	stmtFor := func(n int) string {
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + table + ` (run_id, path, type, size, hash, result, message) VALUES `)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?,?,?,?,?,?,?)")
		}
		return b.String()
	}
	var full *sql.Stmt
	if len(files) >= batchRows {
		s, err := tx.PrepareContext(ctx, stmtFor(batchRows))
		if err != nil {
			return err
		}
		defer s.Close()
		full = s
	}
	args := make([]any, 0, 7*batchRows)
	for len(files) > 0 {
		n := min(len(files), batchRows)
		args = args[:0]
		for _, f := range files[:n] {
			args = append(args, runID, f.Path, f.Type, f.Size, f.Hash, string(f.Result), f.Message)
		}
		var err error
		if n == batchRows {
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, stmtFor(n), args...)
		}
		if err != nil {
			return fmt.Errorf("insert run files: %w", err)
		}
		files = files[n:]
	}
	return nil
}

func setCounts(ctx context.Context, tx *sql.Tx, runID int64, p *Counts) error {
	_, err := tx.ExecContext(ctx, `UPDATE runs SET files=?, dirs=?, links=?, others=?, bytes=?, bytes_added=?,
		new=?, changed=?, unchanged=?, failed=? WHERE id=?`,
		p.Files, p.Dirs, p.Links, p.Others, p.Bytes, p.BytesAdded, p.New, p.Changed, p.Unchanged, p.Failed, runID)
	return err
}

// Finish is the outcome of a run, recorded by FinishRun.
type Finish struct {
	Status     Status // ok, partial, failed or interrupted
	Counts     Counts
	SnapshotID string
	Error      string
}

// FinishRun records the end of a run. A run that is no longer running
// (marked interrupted by another process meanwhile) is finished all the same:
// the process that finishes it was alive after all.
func (c *Catalog) FinishRun(ctx context.Context, runID int64, f Finish) error {
	if err := f.Status.valid(); err != nil || f.Status == StatusRunning {
		return fmt.Errorf("finish run %d: bad status %q", runID, f.Status)
	}
	now := c.now()
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		if err := setCounts(ctx, tx, runID, &f.Counts); err != nil {
			return err
		}
		// Whatever is still staged never became durable.
		if _, err := tx.ExecContext(ctx, `DELETE FROM run_files_staged WHERE run_id = ?`, runID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE runs SET status=?, finished=?, snapshot_id=?, error=? WHERE id=?`,
			f.Status, now.UnixMilli(), f.SnapshotID, f.Error, runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("finish run %d: %w", runID, err)
	}
	return nil
}

// MarkInterrupted marks as interrupted every run left running by a process
// of this host that no longer exists, and returns their IDs. Open calls it.
func (c *Catalog) MarkInterrupted(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		ids, err = c.markInterruptedIDs(ctx, tx, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("mark interrupted runs: %w", err)
	}
	return ids, nil
}

func (c *Catalog) markInterrupted(ctx context.Context, tx *sql.Tx, source string) error {
	_, err := c.markInterruptedIDs(ctx, tx, source)
	return err
}

// markInterruptedIDs does MarkInterrupted for one source, or all if "".
func (c *Catalog) markInterruptedIDs(ctx context.Context, tx *sql.Tx, source string) ([]int64, error) {
	q := `SELECT id, owner_host, owner_boot, owner_pid, owner_start FROM runs WHERE status = 'running'`
	args := []any{}
	if source != "" {
		q += ` AND source = ?`
		args = append(args, source)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var dead []int64
	for rows.Next() {
		var id int64
		var o owner
		if err := rows.Scan(&id, &o.host, &o.boot, &o.pid, &o.start); err != nil {
			rows.Close()
			return nil, err
		}
		if !c.self.alive(o) {
			dead = append(dead, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range dead {
		// finished stays NULL: nobody saw the run end.
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'interrupted',
			error = CASE WHEN error = '' THEN 'the process running it stopped' ELSE error END WHERE id = ?`, id); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM run_files_staged WHERE run_id = ?`, id); err != nil {
			return nil, err
		}
	}
	return dead, nil
}

// GetRun returns the run with this ID, or ErrNotFound.
func (c *Catalog) GetRun(ctx context.Context, id int64) (*Run, error) {
	r, err := scanRun(c.db.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("run %d: %w", id, err)
	}
	return r, nil
}

// RunFilter selects runs for Runs.
type RunFilter struct {
	Source string // "" = every source
	Limit  int    // 0 = no limit
}

// Runs returns runs, newest first.
func (c *Catalog) Runs(ctx context.Context, f RunFilter) ([]*Run, error) {
	q := `SELECT ` + runCols + ` FROM runs`
	var args []any
	if f.Source != "" {
		q += ` WHERE source = ?`
		args = append(args, f.Source)
	}
	q += ` ORDER BY id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	return queryAll(ctx, c.db, "runs", scanRun, q, args...)
}

// LastRun returns the source's latest run, or nil if it never ran.
func (c *Catalog) LastRun(ctx context.Context, source string) (*Run, error) {
	runs, err := c.Runs(ctx, RunFilter{Source: source, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(runs) == 0 {
		return nil, nil
	}
	return runs[0], nil
}

// FileFilter selects run files for RunFiles.
type FileFilter struct {
	FailedOnly bool // only files with result "failed"
}

// RunFiles calls fn for each file recorded for the run, in the order they
// were recorded, stopping at fn's first error. It returns ErrNotFound if
// the run does not exist.
func (c *Catalog) RunFiles(ctx context.Context, runID int64, f FileFilter, fn func(RunFile) error) error {
	if _, err := c.GetRun(ctx, runID); err != nil {
		return err
	}
	q := `SELECT path, type, size, hash, result, message FROM run_files WHERE run_id = ?`
	if f.FailedOnly {
		q += ` AND result = 'failed'`
	}
	q += ` ORDER BY rowid`
	rows, err := c.db.QueryContext(ctx, q, runID)
	if err != nil {
		return fmt.Errorf("files of run %d: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var rf RunFile
		if err := rows.Scan(&rf.Path, &rf.Type, &rf.Size, &rf.Hash, &rf.Result, &rf.Message); err != nil {
			return fmt.Errorf("files of run %d: %w", runID, err)
		}
		if err := fn(rf); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("files of run %d: %w", runID, err)
	}
	return nil
}
