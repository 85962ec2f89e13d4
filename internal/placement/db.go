package placement

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/cairn-backup/cairn/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// migrations bring the placement database up to date; migration i moves
// the schema from version i to i+1 (PRAGMA user_version). Never edit one
// that has shipped: append.
var migrations = []string{
	`CREATE TABLE objects (
		type      TEXT NOT NULL,
		name      TEXT NOT NULL,
		size      INTEGER NOT NULL,        -- -1: not known yet (after a rebuild)
		sha       BLOB,                    -- SHA-256 of the object; NULL: not known
		copies    INTEGER NOT NULL,        -- replication degree; 0 with k = 0: every host (metadata)
		k         INTEGER NOT NULL,        -- data shards (0: not erasure coded)
		m         INTEGER NOT NULL,        -- parity shards
		forgotten INTEGER NOT NULL DEFAULT 0, -- deleted by the owner, copies left to delete
		created   INTEGER NOT NULL,        -- Unix seconds
		PRIMARY KEY (type, name)
	);
	CREATE TABLE pieces (
		type  TEXT NOT NULL,
		name  TEXT NOT NULL,               -- the piece's object name on hosts
		obj   TEXT NOT NULL,               -- name of the object it belongs to (same type)
		idx   INTEGER NOT NULL,            -- shard index; 0 for a whole copy
		size  INTEGER NOT NULL,
		sha   BLOB,                        -- SHA-256 of the piece; NULL: not known
		root  BLOB,                        -- Merkle audit root; NULL: not known yet
		PRIMARY KEY (type, name)
	);
	CREATE INDEX pieces_obj ON pieces(type, obj);
	CREATE TABLE placements (
		type   TEXT NOT NULL,
		piece  TEXT NOT NULL,
		host   TEXT NOT NULL,
		until  INTEGER NOT NULL,           -- lease end, Unix seconds
		placed INTEGER NOT NULL,
		state  INTEGER NOT NULL,           -- 0 ok, 1 bad (failed an audit), 2 dropped (host gone)
		PRIMARY KEY (type, piece, host)
	);
	CREATE INDEX placements_host ON placements(host);
	CREATE TABLE hosts (
		id            TEXT PRIMARY KEY,
		first_seen    INTEGER NOT NULL,
		last_seen     INTEGER NOT NULL,
		audits_ok     INTEGER NOT NULL DEFAULT 0,
		audits_failed INTEGER NOT NULL DEFAULT 0
	);
	CREATE TABLE audits (
		at      INTEGER NOT NULL,
		host    TEXT NOT NULL,
		type    TEXT NOT NULL,
		piece   TEXT NOT NULL,
		ok      INTEGER NOT NULL,
		message TEXT NOT NULL
	);
	CREATE INDEX audits_host ON audits(host, at);
	CREATE TABLE kv (
		key   TEXT PRIMARY KEY,            -- 'hostlist': name of the current host list object
		value TEXT NOT NULL
	);`,
	// listed: the host's holdings were adopted by a rebuild. A record that
	// was rebuilt (kv 'rebuilt') lists every host not listed yet when it
	// comes online, so hosts offline during a recovery are adopted too.
	`ALTER TABLE hosts ADD COLUMN listed INTEGER NOT NULL DEFAULT 0;`,
}

type db struct {
	sql *sql.DB
	// cur is the transaction of a batch in progress (see batch). Only
	// touched with the engine's lock held.
	cur *sql.Tx
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (d *db) ex() execer {
	if d.cur != nil {
		return d.cur
	}
	return d.sql
}

// inTx runs fn in the batch in progress, or in a transaction of its own.
func (d *db) inTx(ctx context.Context, fn func(ex execer) error) error {
	if d.cur != nil {
		return fn(d.cur)
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// batch runs fn with every write in one transaction (many small writes:
// a rebuild, the first sync of a large repository). The caller holds the
// engine's lock for the whole batch.
func (d *db) batch(ctx context.Context, fn func() error) error {
	if d.cur != nil {
		return fn()
	}
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	d.cur = tx
	err = fn()
	d.cur = nil
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func openDB(ctx context.Context, path string, readOnly bool) (*db, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Set("_txlock", "immediate")
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	s, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	s.SetMaxOpenConns(1) // every statement is short; the engine serialises writes anyway
	d := &db{sql: s}
	if readOnly {
		var v int
		if err := s.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil || v != len(migrations) {
			s.Close()
			return nil, fmt.Errorf("placement database is schema version %d, want %d (open it for writing once): %v", v, len(migrations), err)
		}
		return d, nil
	}
	if err := d.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.Close()
		return nil, err
	}
	return d, nil
}

func (d *db) migrate(ctx context.Context) error {
	var v int
	if err := d.sql.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("placement database is schema version %d, this cairn knows %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := d.sql.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v+1, err)
		}
	}
	return nil
}

func nullHash(b [32]byte, known bool) any {
	if !known {
		return nil
	}
	return b[:]
}

func scanHash(b []byte) ([32]byte, bool) {
	var h [32]byte
	if len(b) != 32 {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// intern returns one shared copy of each type and host string, so that
// the record in memory does not hold a copy per row.
type interner map[string]string

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	in[s] = s
	return s
}

// load reads the whole record into memory.
func (d *db) load(ctx context.Context) (map[store.Handle]*object, map[string]*hostRec, error) {
	in := interner{}
	for _, t := range store.Types {
		in[string(t)] = string(t)
	}
	objs := map[store.Handle]*object{}
	rows, err := d.sql.QueryContext(ctx, `SELECT type, name, size, sha, copies, k, m, forgotten, created FROM objects`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		o := &object{}
		var sha []byte
		var created int64
		if err := rows.Scan(&o.h.Type, &o.h.Name, &o.size, &sha, &o.red.Copies, &o.red.Data, &o.red.Parity, &o.forgotten, &created); err != nil {
			rows.Close()
			return nil, nil, err
		}
		o.h.Type = store.Type(in.get(string(o.h.Type)))
		o.sha, o.shaKnown = scanHash(sha)
		o.created = time.Unix(created, 0)
		objs[o.h] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	pieces := map[store.Handle]*piece{}
	rows, err = d.sql.QueryContext(ctx, `SELECT type, name, obj, idx, size, sha, root FROM pieces`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		p := &piece{}
		var obj string
		var sha, root []byte
		if err := rows.Scan(&p.h.Type, &p.h.Name, &obj, &p.idx, &p.size, &sha, &root); err != nil {
			rows.Close()
			return nil, nil, err
		}
		p.sha, p.shaKnown = scanHash(sha)
		p.root, p.rootKnown = scanHash(root)
		o := objs[store.Handle{Type: p.h.Type, Name: obj}]
		if o == nil {
			continue
		}
		p.h.Type = o.h.Type
		if p.h.Name == o.h.Name {
			p.h.Name = o.h.Name
		}
		p.obj = o
		o.addPiece(p)
		pieces[p.h] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = d.sql.QueryContext(ctx, `SELECT type, piece, host, until, placed, state FROM placements`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var h store.Handle
		var host string
		var until, placed int64
		var state int
		if err := rows.Scan(&h.Type, &h.Name, &host, &until, &placed, &state); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if p := pieces[h]; p != nil {
			p.at.set(in.get(host), &copyRec{until: time.Unix(until, 0), placed: time.Unix(placed, 0), state: state})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	hosts := map[string]*hostRec{}
	rows, err = d.sql.QueryContext(ctx, `SELECT id, first_seen, last_seen, audits_ok, audits_failed, listed FROM hosts`)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		h := &hostRec{}
		var first, last int64
		if err := rows.Scan(&h.id, &first, &last, &h.auditsOK, &h.auditsFailed, &h.listed); err != nil {
			rows.Close()
			return nil, nil, err
		}
		h.firstSeen, h.lastSeen = time.Unix(first, 0), time.Unix(last, 0)
		hosts[h.id] = h
	}
	rows.Close()
	return objs, hosts, rows.Err()
}

// saveObject writes an object and its pieces (not their placements).
func (d *db) saveObject(ctx context.Context, o *object) error {
	return d.inTx(ctx, func(tx execer) error { return saveObject(ctx, tx, o) })
}

func saveObject(ctx context.Context, tx execer, o *object) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO objects (type, name, size, sha, copies, k, m, forgotten, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (type, name) DO UPDATE SET size = excluded.size, sha = excluded.sha, copies = excluded.copies,
			k = excluded.k, m = excluded.m, forgotten = excluded.forgotten`,
		o.h.Type, o.h.Name, o.size, nullHash(o.sha, o.shaKnown), o.red.Copies, o.red.Data, o.red.Parity, o.forgotten, o.created.Unix())
	if err != nil {
		return err
	}
	for _, p := range o.pieces {
		if p == nil {
			continue
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pieces (type, name, obj, idx, size, sha, root) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (type, name) DO UPDATE SET obj = excluded.obj, idx = excluded.idx, size = excluded.size,
				sha = excluded.sha, root = excluded.root`,
			p.h.Type, p.h.Name, o.h.Name, p.idx, p.size, nullHash(p.sha, p.shaKnown), nullHash(p.root, p.rootKnown))
		if err != nil {
			return err
		}
	}
	return nil
}

// deleteObject removes an object, its pieces and their placements.
func (d *db) deleteObject(ctx context.Context, o *object) error {
	return d.inTx(ctx, func(tx execer) error { return deleteObject(ctx, tx, o) })
}

func deleteObject(ctx context.Context, tx execer, o *object) error {
	for _, p := range o.pieces {
		if p == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM placements WHERE type = ? AND piece = ?`, p.h.Type, p.h.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pieces WHERE type = ? AND name = ?`, p.h.Type, p.h.Name); err != nil {
			return err
		}
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE type = ? AND name = ?`, o.h.Type, o.h.Name)
	return err
}

func (d *db) savePlacement(ctx context.Context, p *piece, host string, c *copyRec) error {
	_, err := d.ex().ExecContext(ctx, `INSERT INTO placements (type, piece, host, until, placed, state) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (type, piece, host) DO UPDATE SET until = excluded.until, placed = excluded.placed, state = excluded.state`,
		p.h.Type, p.h.Name, host, c.until.Unix(), c.placed.Unix(), c.state)
	return err
}

func (d *db) deletePlacement(ctx context.Context, p *piece, host string) error {
	_, err := d.ex().ExecContext(ctx, `DELETE FROM placements WHERE type = ? AND piece = ? AND host = ?`, p.h.Type, p.h.Name, host)
	return err
}

func (d *db) saveHost(ctx context.Context, h *hostRec) error {
	_, err := d.ex().ExecContext(ctx, `INSERT INTO hosts (id, first_seen, last_seen, audits_ok, audits_failed, listed) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, audits_ok = excluded.audits_ok,
			audits_failed = excluded.audits_failed, listed = excluded.listed`,
		h.id, h.firstSeen.Unix(), h.lastSeen.Unix(), h.auditsOK, h.auditsFailed, h.listed)
	return err
}

func (d *db) addAudit(ctx context.Context, at time.Time, host string, p *piece, ok bool, msg string) error {
	_, err := d.ex().ExecContext(ctx, `INSERT INTO audits (at, host, type, piece, ok, message) VALUES (?, ?, ?, ?, ?, ?)`,
		at.Unix(), host, p.h.Type, p.h.Name, ok, msg)
	return err
}
