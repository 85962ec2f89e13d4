// Package catalog is the node's SQLite catalog: the sources to back up, the
// history of their runs and, for every run, the result of each new, changed
// or failed file.
//
// The catalog uses the pure-Go driver modernc.org/sqlite in WAL mode with a
// busy timeout and foreign keys on. Its schema is created and upgraded by
// numbered migrations in this package (see migrations.go); docs/catalog.md
// documents every table and result code.
//
// Everything in the catalog but the run history can be rebuilt from the
// repository. A run's file records are written only once their data is
// durable in the repository (see Catalog.Checkpoint), so the catalog never
// shows a file as saved that is not.
//
// Several processes may open one catalog at once (the daemon and a command
// line run): SQLite serialises the writers and a run left "running" by a
// process that no longer exists is marked "interrupted" when the catalog is
// next opened.
package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrNotFound is returned when a source or run does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists is returned when a source with the same name exists.
	ErrExists = errors.New("already exists")
	// ErrRunning is returned by BeginRun when the source already has a run
	// in progress in a live process.
	ErrRunning = errors.New("a run of this source is already in progress")
	// ErrTooNew is returned by Open when the catalog was written by a newer
	// cairn with a schema this one does not know.
	ErrTooNew = errors.New("catalog schema is newer than this cairn")
)

// Catalog is an open catalog database. It is safe for concurrent use.
type Catalog struct {
	db   *sql.DB
	now  func() time.Time
	self owner
}

// Options tune Open. The zero value is fine.
type Options struct {
	// Now returns the current time; time.Now if nil. Tests inject a clock.
	Now func() time.Time
	// BusyTimeout is how long a writer waits for another's lock; 10s if zero.
	BusyTimeout time.Duration
}

// Open opens (creating if needed) the catalog at path, brings its schema up
// to date and marks the runs left "running" by dead processes as
// "interrupted".
func Open(ctx context.Context, path string, opts Options) (*Catalog, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = 10 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", opts.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	// One writer at a time is all SQLite allows; a few readers beside it.
	db.SetMaxOpenConns(4)
	c := &Catalog{db: db, now: opts.Now, self: currentOwner()}
	if err := c.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if _, err := c.MarkInterrupted(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	return c, nil
}

// Close closes the database.
func (c *Catalog) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close catalog: %w", err)
	}
	return nil
}

// inTx runs fn in a write transaction, committing when fn returns nil.
func (c *Catalog) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// fromMS converts a stored Unix millisecond value back to a time in UTC.
func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// queryAll runs q and scans every row with scan; what names the listing
// in errors.
func queryAll[T any](ctx context.Context, db *sql.DB, what string, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", what, err)
	}
	return out, nil
}
