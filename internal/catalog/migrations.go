package catalog

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations upgrade the schema one version at a time: migrations[i] takes
// the catalog from version i to i+1. Append only; never edit a released
// migration. docs/catalog.md describes the resulting schema.
var migrations = []string{
	// 1: sources, runs and run files.
	`
CREATE TABLE sources (
	id          INTEGER PRIMARY KEY,
	name        TEXT    NOT NULL UNIQUE,
	paths       TEXT    NOT NULL,             -- JSON array of absolute paths
	excludes    TEXT    NOT NULL DEFAULT '[]',-- JSON array of patterns
	schedule    TEXT    NOT NULL DEFAULT '',  -- schedule spec, '' = on demand only
	pre_hook    TEXT    NOT NULL DEFAULT '',
	post_hook   TEXT    NOT NULL DEFAULT '',
	keep_last    INTEGER NOT NULL DEFAULT 0,
	keep_hourly  INTEGER NOT NULL DEFAULT 0,
	keep_daily   INTEGER NOT NULL DEFAULT 0,
	keep_weekly  INTEGER NOT NULL DEFAULT 0,
	keep_monthly INTEGER NOT NULL DEFAULT 0,
	keep_yearly  INTEGER NOT NULL DEFAULT 0,
	keep_within  INTEGER NOT NULL DEFAULT 0,  -- nanoseconds
	redundancy  TEXT    NOT NULL DEFAULT '',  -- "r" or "k+m", '' = node default
	window      TEXT    NOT NULL DEFAULT '',  -- WAN traffic window, '' = always
	limit_up    INTEGER NOT NULL DEFAULT 0,   -- bytes/s, 0 = unlimited
	limit_down  INTEGER NOT NULL DEFAULT 0,   -- bytes/s, 0 = unlimited
	created     INTEGER NOT NULL,             -- Unix ms
	updated     INTEGER NOT NULL              -- Unix ms
);

CREATE TABLE runs (
	id           INTEGER PRIMARY KEY,
	source_id    INTEGER REFERENCES sources(id) ON DELETE SET NULL,
	source       TEXT    NOT NULL,            -- name at the time of the run
	kind         TEXT    NOT NULL CHECK (kind IN ('full','incremental')),
	status       TEXT    NOT NULL CHECK (status IN ('running','ok','partial','failed','interrupted')),
	started      INTEGER NOT NULL,
	finished     INTEGER,
	resumed_from INTEGER REFERENCES runs(id) ON DELETE SET NULL,
	owner_host   TEXT    NOT NULL DEFAULT '', -- process that runs it, to detect a crash
	owner_boot   TEXT    NOT NULL DEFAULT '',
	owner_pid    INTEGER NOT NULL DEFAULT 0,
	files        INTEGER NOT NULL DEFAULT 0,
	dirs         INTEGER NOT NULL DEFAULT 0,
	links        INTEGER NOT NULL DEFAULT 0,
	others       INTEGER NOT NULL DEFAULT 0,
	bytes        INTEGER NOT NULL DEFAULT 0,
	bytes_added  INTEGER NOT NULL DEFAULT 0,
	new          INTEGER NOT NULL DEFAULT 0,
	changed      INTEGER NOT NULL DEFAULT 0,
	unchanged    INTEGER NOT NULL DEFAULT 0,
	failed       INTEGER NOT NULL DEFAULT 0,
	snapshot_id  TEXT    NOT NULL DEFAULT '',
	error        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX runs_source ON runs(source, id);
CREATE INDEX runs_status ON runs(status) WHERE status = 'running';

CREATE TABLE run_files (
	run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	path    TEXT    NOT NULL,
	type    TEXT    NOT NULL,
	size    INTEGER NOT NULL DEFAULT 0,
	hash    TEXT    NOT NULL DEFAULT '',
	result  TEXT    NOT NULL,
	message TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX run_files_run ON run_files(run_id);

-- Records of files handed to the repository but not yet durable there,
-- spilled from memory during a long stretch between checkpoints. A
-- checkpoint moves them to run_files; a failed or interrupted run drops them.
CREATE TABLE run_files_staged (
	run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
	path    TEXT    NOT NULL,
	type    TEXT    NOT NULL,
	size    INTEGER NOT NULL DEFAULT 0,
	hash    TEXT    NOT NULL DEFAULT '',
	result  TEXT    NOT NULL,
	message TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX run_files_staged_run ON run_files_staged(run_id);
`,
	// 2: the start time of the process running a run, so a PID reused by
	// another process is not taken for the runner.
	`ALTER TABLE runs ADD COLUMN owner_start TEXT NOT NULL DEFAULT '';`,
}

// schemaVersion is the version this build writes.
var schemaVersion = len(migrations)

// migrate brings the schema to schemaVersion, one transaction per step.
func (c *Catalog) migrate(ctx context.Context) error {
	if _, err := c.db.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	for {
		var done bool
		err := c.inTx(ctx, func(tx *sql.Tx) error {
			var v int
			err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
			if err == sql.ErrNoRows {
				if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
					return err
				}
				v = 0
			} else if err != nil {
				return err
			}
			if v > schemaVersion {
				return fmt.Errorf("%w: version %d, this cairn knows up to %d", ErrTooNew, v, schemaVersion)
			}
			if v == schemaVersion {
				done = true
				return nil
			}
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
			_, err = tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// SchemaVersion returns the schema version of the open catalog.
func (c *Catalog) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := c.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
