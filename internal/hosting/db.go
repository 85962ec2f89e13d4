package hosting

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/libp2p/go-libp2p/core/peer"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// migrations bring the hosting database up to date; migration i moves the
// schema from version i to i+1 (PRAGMA user_version). Never edit one that
// has shipped: append.
var migrations = []string{
	`CREATE TABLE owners (
		owner      TEXT PRIMARY KEY,   -- hex SHA-256 of pub
		pub        BLOB NOT NULL,      -- Ed25519 owner public key, recorded at first put
		first_seen INTEGER NOT NULL    -- Unix seconds
	);
	CREATE TABLE objects (
		owner   TEXT NOT NULL REFERENCES owners(owner),
		type    TEXT NOT NULL,
		name    TEXT NOT NULL,
		size    INTEGER NOT NULL,
		hash    BLOB NOT NULL,         -- SHA-256 of the bytes, checked at put
		peer    TEXT NOT NULL,         -- node charged for it (the uploader)
		until   INTEGER NOT NULL,      -- lease end, Unix seconds
		created INTEGER NOT NULL,
		PRIMARY KEY (owner, type, name)
	);
	CREATE INDEX objects_peer ON objects(peer);
	CREATE INDEX objects_until ON objects(until);
	CREATE TABLE ledger (
		peer    TEXT PRIMARY KEY,
		held_by INTEGER NOT NULL,      -- bytes this peer keeps for us, reported by the owner side
		updated INTEGER NOT NULL
	);`,
}

type db struct {
	sql *sql.DB
}

func openDB(ctx context.Context, path string) (*db, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// FULL: a committed row is the host's promise to the owner; it must
	// survive a power cut.
	q.Add("_pragma", "synchronous(FULL)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	s, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open hosting database %s: %w", path, err)
	}
	s.SetMaxOpenConns(4)
	d := &db{sql: s}
	if err := d.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open hosting database %s: %w", path, err)
	}
	return d, nil
}

func (d *db) migrate(ctx context.Context) error {
	var v int
	if err := d.sql.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this cairn knows (%d): upgrade cairn", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := d.sql.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
	}
	return nil
}

func (d *db) close() error { return d.sql.Close() }

// row is one hosted object.
type row struct {
	Owner  string
	Handle store.Handle
	Size   int64
	Hash   []byte
	Peer   peer.ID
	Until  time.Time
}

func (d *db) get(ctx context.Context, owner string, h store.Handle) (row, error) {
	r := row{Owner: owner, Handle: h}
	var p string
	var until int64
	err := d.sql.QueryRowContext(ctx,
		`SELECT size, hash, peer, until FROM objects WHERE owner = ? AND type = ? AND name = ?`,
		owner, string(h.Type), h.Name).Scan(&r.Size, &r.Hash, &p, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("%s of %s: %w", h, owner, store.ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("look up %s: %w", h, err)
	}
	r.Peer = peer.ID(p)
	r.Until = time.Unix(until, 0)
	return r, nil
}

// commit records an object after its file was renamed into place.
func (d *db) commit(ctx context.Context, r row, pub []byte, now time.Time) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("commit %s: %w", r.Handle, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO owners(owner, pub, first_seen) VALUES (?, ?, ?) ON CONFLICT(owner) DO NOTHING`,
		r.Owner, pub, now.Unix()); err != nil {
		return fmt.Errorf("commit %s: record owner: %w", r.Handle, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO objects(owner, type, name, size, hash, peer, until, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(owner, type, name) DO UPDATE SET size = excluded.size, hash = excluded.hash,
			peer = excluded.peer, until = max(until, excluded.until)`,
		r.Owner, string(r.Handle.Type), r.Handle.Name, r.Size, r.Hash, string(r.Peer), r.Until.Unix(), now.Unix()); err != nil {
		return fmt.Errorf("commit %s: %w", r.Handle, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit %s: %w", r.Handle, err)
	}
	return nil
}

// key names one object of one owner.
type key struct {
	owner string
	h     store.Handle
}

// extend moves a lease's end to until if that is later; it reports whether
// the object exists.
func (d *db) extend(ctx context.Context, owner string, h store.Handle, until time.Time) (bool, error) {
	ok, err := d.extendMany(ctx, owner, []store.Handle{h}, until)
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// extendMany extends several leases in one transaction (one fsync, not
// one per object) and reports which objects exist.
func (d *db) extendMany(ctx context.Context, owner string, hs []store.Handle, until time.Time) ([]bool, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	defer tx.Rollback()
	out := make([]bool, len(hs))
	for i, h := range hs {
		res, err := tx.ExecContext(ctx, `UPDATE objects SET until = max(until, ?) WHERE owner = ? AND type = ? AND name = ?`,
			until.Unix(), owner, string(h.Type), h.Name)
		if err != nil {
			return nil, fmt.Errorf("renew %s: %w", h, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("renew %s: %w", h, err)
		}
		out[i] = n > 0
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("renew: %w", err)
	}
	return out, nil
}

// remove deletes an object's row (only if its lease ended before
// expiredBefore, when that is not zero). It reports the removed size, or
// -1 when no row was removed.
func (d *db) remove(ctx context.Context, owner string, h store.Handle, expiredBefore time.Time) (int64, error) {
	sizes, err := d.removeMany(ctx, []key{{owner, h}}, expiredBefore)
	if err != nil {
		return -1, err
	}
	return sizes[0], nil
}

// removeMany is remove for several objects in one transaction.
func (d *db) removeMany(ctx context.Context, keys []key, expiredBefore time.Time) ([]int64, error) {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	defer tx.Rollback()
	out := make([]int64, len(keys))
	for i, k := range keys {
		q := `DELETE FROM objects WHERE owner = ? AND type = ? AND name = ? RETURNING size`
		args := []any{k.owner, string(k.h.Type), k.h.Name}
		if !expiredBefore.IsZero() {
			q = `DELETE FROM objects WHERE owner = ? AND type = ? AND name = ? AND until < ? RETURNING size`
			args = append(args, expiredBefore.Unix())
		}
		err := tx.QueryRowContext(ctx, q, args...).Scan(&out[i])
		if errors.Is(err, sql.ErrNoRows) {
			out[i] = -1
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("delete %s: %w", k.h, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("delete: %w", err)
	}
	return out, nil
}

// list returns up to limit objects of owner after (afterType, afterName)
// in (type, name) order, of type t only when t is not empty.
func (d *db) list(ctx context.Context, owner string, t store.Type, after store.Handle, limit int) ([]row, error) {
	q := `SELECT type, name, size, hash, peer, until FROM objects WHERE owner = ? AND (type, name) > (?, ?)`
	args := []any{owner, string(after.Type), after.Name}
	if t != "" {
		q += ` AND type = ?`
		args = append(args, string(t))
	}
	q += ` ORDER BY type, name LIMIT ?`
	args = append(args, limit)
	return d.query(ctx, owner, q, args...)
}

// expired returns up to limit objects whose lease ended before now.
func (d *db) expired(ctx context.Context, now time.Time, limit int) ([]row, error) {
	return d.query(ctx, "", `SELECT type, name, size, hash, peer, until, owner FROM objects WHERE until < ? LIMIT ?`, now.Unix(), limit)
}

// query scans rows of (type, name, size, hash, peer, until[, owner]).
func (d *db) query(ctx context.Context, owner string, q string, args ...any) ([]row, error) {
	rows, err := d.sql.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("query objects: %w", err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []row
	for rows.Next() {
		r := row{Owner: owner}
		var typ, p string
		var until int64
		dest := []any{&typ, &r.Handle.Name, &r.Size, &r.Hash, &p, &until}
		if len(cols) == 7 {
			dest = append(dest, &r.Owner)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("query objects: %w", err)
		}
		r.Handle.Type = store.Type(typ)
		r.Peer = peer.ID(p)
		r.Until = time.Unix(until, 0)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query objects: %w", err)
	}
	return out, nil
}

// all calls fn for every object (owner, type, name) on record.
func (d *db) all(ctx context.Context, fn func(owner string, h store.Handle) error) error {
	rows, err := d.sql.QueryContext(ctx, `SELECT owner, type, name FROM objects`)
	if err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	var keys []row
	for rows.Next() {
		var r row
		var typ string
		if err := rows.Scan(&r.Owner, &typ, &r.Handle.Name); err != nil {
			rows.Close()
			return fmt.Errorf("list objects: %w", err)
		}
		r.Handle.Type = store.Type(typ)
		keys = append(keys, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	for _, r := range keys {
		if err := fn(r.Owner, r.Handle); err != nil {
			return err
		}
	}
	return nil
}

func (d *db) exists(ctx context.Context, owner string, h store.Handle) (bool, error) {
	var one int
	err := d.sql.QueryRowContext(ctx, `SELECT 1 FROM objects WHERE owner = ? AND type = ? AND name = ?`,
		owner, string(h.Type), h.Name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", h, err)
	}
	return true, nil
}

// heldFor returns the bytes held for a peer, or for everyone when p is "".
func (d *db) heldFor(ctx context.Context, p peer.ID) (int64, error) {
	var n int64
	var err error
	if p == "" {
		err = d.sql.QueryRowContext(ctx, `SELECT coalesce(sum(size), 0) FROM objects`).Scan(&n)
	} else {
		err = d.sql.QueryRowContext(ctx, `SELECT coalesce(sum(size), 0) FROM objects WHERE peer = ?`, string(p)).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("sum held bytes: %w", err)
	}
	return n, nil
}

func (d *db) heldBy(ctx context.Context, p peer.ID) (int64, error) {
	var n int64
	err := d.sql.QueryRowContext(ctx, `SELECT held_by FROM ledger WHERE peer = ?`, string(p)).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read ledger: %w", err)
	}
	return n, nil
}

func (d *db) setHeldBy(ctx context.Context, p peer.ID, n int64, now time.Time) error {
	_, err := d.sql.ExecContext(ctx, `INSERT INTO ledger(peer, held_by, updated) VALUES (?, ?, ?)
		ON CONFLICT(peer) DO UPDATE SET held_by = excluded.held_by, updated = excluded.updated`,
		string(p), n, now.Unix())
	if err != nil {
		return fmt.Errorf("record bytes held by %s: %w", p, err)
	}
	return nil
}

// LedgerEntry is what the ledger knows of one peer.
type LedgerEntry struct {
	HeldFor int64     // bytes this node keeps for the peer
	Objects int64     // number of objects kept for the peer
	HeldBy  int64     // bytes the peer keeps for this node's owner (RecordHeldBy)
	Updated time.Time // when HeldBy was last recorded; zero if never
}

func (d *db) ledger(ctx context.Context) (map[peer.ID]LedgerEntry, error) {
	out := map[peer.ID]LedgerEntry{}
	rows, err := d.sql.QueryContext(ctx, `SELECT peer, sum(size), count(*) FROM objects GROUP BY peer`)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	for rows.Next() {
		var p string
		var e LedgerEntry
		if err := rows.Scan(&p, &e.HeldFor, &e.Objects); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		out[peer.ID(p)] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	rows, err = d.sql.QueryContext(ctx, `SELECT peer, held_by, updated FROM ledger`)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var p string
		var by, upd int64
		if err := rows.Scan(&p, &by, &upd); err != nil {
			return nil, fmt.Errorf("read ledger: %w", err)
		}
		e := out[peer.ID(p)]
		e.HeldBy, e.Updated = by, time.Unix(upd, 0)
		out[peer.ID(p)] = e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	return out, nil
}

// Usage sums up what a host keeps.
type Usage struct {
	Objects    int64 // hosted objects
	Bytes      int64 // hosted bytes
	Owners     int64 // owners with at least one object
	Peers      int64 // nodes charged for at least one object
	OfferBytes int64 // the offer in force
	FreeBytes  int64 // what is left of the offer (never below 0)
}

func (d *db) usage(ctx context.Context) (Usage, error) {
	var u Usage
	err := d.sql.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(size), 0), count(DISTINCT owner), count(DISTINCT peer) FROM objects`).
		Scan(&u.Objects, &u.Bytes, &u.Owners, &u.Peers)
	if err != nil {
		return u, fmt.Errorf("read usage: %w", err)
	}
	return u, nil
}
