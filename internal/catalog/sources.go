package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Source is a set of folders backed up together, with its schedule,
// excludes, hooks, retention, redundancy and traffic settings.
type Source struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Paths      []string  `json:"paths"`
	Excludes   []string  `json:"excludes"`
	Schedule   string    `json:"schedule"`   // schedule spec; "" runs on demand only
	PreHook    string    `json:"pre_hook"`   // shell command run before reading
	PostHook   string    `json:"post_hook"`  // shell command run after, always
	Retention  Retention `json:"retention"`  // applied after each run
	Redundancy string    `json:"redundancy"` // "r" or "k+m"; "" = node default
	Window     string    `json:"window"`     // WAN traffic window; "" = always
	LimitUp    int64     `json:"limit_up"`   // bytes/s; 0 = unlimited
	LimitDown  int64     `json:"limit_down"` // bytes/s; 0 = unlimited
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// Retention is a source's snapshot retention policy; the zero value keeps
// everything.
type Retention struct {
	Last    int           `json:"last,omitempty"`
	Hourly  int           `json:"hourly,omitempty"`
	Daily   int           `json:"daily,omitempty"`
	Weekly  int           `json:"weekly,omitempty"`
	Monthly int           `json:"monthly,omitempty"`
	Yearly  int           `json:"yearly,omitempty"`
	Within  time.Duration `json:"within,omitempty"`
}

// IsZero reports whether the policy keeps everything.
func (r Retention) IsZero() bool { return r == Retention{} }

// String describes the policy for people, e.g. "last 3, daily 7".
func (r Retention) String() string {
	if r.IsZero() {
		return "keep all"
	}
	var parts []string
	add := func(name string, n int) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("last", r.Last)
	add("hourly", r.Hourly)
	add("daily", r.Daily)
	add("weekly", r.Weekly)
	add("monthly", r.Monthly)
	add("yearly", r.Yearly)
	if r.Within > 0 {
		parts = append(parts, "within "+r.Within.String())
	}
	return strings.Join(parts, ", ")
}

const sourceCols = `id, name, paths, excludes, schedule, pre_hook, post_hook,
	keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within,
	redundancy, window, limit_up, limit_down, created, updated`

func scanSource(row rowScanner) (*Source, error) {
	var s Source
	var paths, excludes string
	var within int64
	var created, updated sql.NullInt64
	err := row.Scan(&s.ID, &s.Name, &paths, &excludes, &s.Schedule, &s.PreHook, &s.PostHook,
		&s.Retention.Last, &s.Retention.Hourly, &s.Retention.Daily, &s.Retention.Weekly,
		&s.Retention.Monthly, &s.Retention.Yearly, &within,
		&s.Redundancy, &s.Window, &s.LimitUp, &s.LimitDown, &created, &updated)
	if err != nil {
		return nil, err
	}
	s.Retention.Within = time.Duration(within)
	s.Created, s.Updated = fromMS(created), fromMS(updated)
	if err := json.Unmarshal([]byte(paths), &s.Paths); err != nil {
		return nil, fmt.Errorf("source %s: paths: %w", s.Name, err)
	}
	if err := json.Unmarshal([]byte(excludes), &s.Excludes); err != nil {
		return nil, fmt.Errorf("source %s: excludes: %w", s.Name, err)
	}
	if s.Excludes == nil {
		s.Excludes = []string{}
	}
	return &s, nil
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// ValidName reports whether name can name a source: 1 to 64 letters,
// digits, '-', '_' or '.', not starting with '-' and not all digits (so it
// never reads as a run ID).
func ValidName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("source name %q: must be 1 to 64 characters", name)
	}
	digits := true
	for i, r := range name {
		switch {
		case r >= '0' && r <= '9':
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == '.':
			digits = false
		case r == '-' && i > 0:
			digits = false
		default:
			return fmt.Errorf("source name %q: only letters, digits, '-', '_' and '.' (not starting with '-')", name)
		}
	}
	if digits {
		return fmt.Errorf("source name %q: must not be all digits", name)
	}
	return nil
}

// AddSource stores a new source and sets its ID and times. It returns
// ErrExists if the name is taken.
func (c *Catalog) AddSource(ctx context.Context, s *Source) error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if len(s.Paths) == 0 {
		return fmt.Errorf("add source %s: no paths", s.Name)
	}
	now := c.now()
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sources WHERE name = ?`, s.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sources (name, paths, excludes, schedule, pre_hook, post_hook,
			keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, keep_within,
			redundancy, window, limit_up, limit_down, created, updated)
			VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			s.Name, jsonList(s.Paths), jsonList(s.Excludes), s.Schedule, s.PreHook, s.PostHook,
			s.Retention.Last, s.Retention.Hourly, s.Retention.Daily, s.Retention.Weekly,
			s.Retention.Monthly, s.Retention.Yearly, int64(s.Retention.Within),
			s.Redundancy, s.Window, s.LimitUp, s.LimitDown, now.UnixMilli(), now.UnixMilli())
		if err != nil {
			return err
		}
		s.ID, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return fmt.Errorf("add source %s: %w", s.Name, err)
	}
	s.Created, s.Updated = time.UnixMilli(now.UnixMilli()).UTC(), time.UnixMilli(now.UnixMilli()).UTC()
	return nil
}

// UpdateSource stores every field of s over the source with s.ID (a rename
// included) and sets s.Updated.
func (c *Catalog) UpdateSource(ctx context.Context, s *Source) error {
	if err := ValidName(s.Name); err != nil {
		return err
	}
	if len(s.Paths) == 0 {
		return fmt.Errorf("update source %s: no paths", s.Name)
	}
	now := c.now()
	err := c.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sources WHERE name = ? AND id <> ?`, s.Name, s.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		res, err := tx.ExecContext(ctx, `UPDATE sources SET name=?, paths=?, excludes=?, schedule=?, pre_hook=?, post_hook=?,
			keep_last=?, keep_hourly=?, keep_daily=?, keep_weekly=?, keep_monthly=?, keep_yearly=?, keep_within=?,
			redundancy=?, window=?, limit_up=?, limit_down=?, updated=? WHERE id=?`,
			s.Name, jsonList(s.Paths), jsonList(s.Excludes), s.Schedule, s.PreHook, s.PostHook,
			s.Retention.Last, s.Retention.Hourly, s.Retention.Daily, s.Retention.Weekly,
			s.Retention.Monthly, s.Retention.Yearly, int64(s.Retention.Within),
			s.Redundancy, s.Window, s.LimitUp, s.LimitDown, now.UnixMilli(), s.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update source %s: %w", s.Name, err)
	}
	s.Updated = time.UnixMilli(now.UnixMilli()).UTC()
	return nil
}

// Source returns the source called name, or ErrNotFound.
func (c *Catalog) Source(ctx context.Context, name string) (*Source, error) {
	row := c.db.QueryRowContext(ctx, `SELECT `+sourceCols+` FROM sources WHERE name = ?`, name)
	s, err := scanSource(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("source %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", name, err)
	}
	return s, nil
}

// Sources returns every source, by name.
func (c *Catalog) Sources(ctx context.Context) ([]*Source, error) {
	return queryAll(ctx, c.db, "sources", scanSource, `SELECT `+sourceCols+` FROM sources ORDER BY name`)
}

// RemoveSource deletes the source called name. Its run history stays (the
// runs keep the source's name).
func (c *Catalog) RemoveSource(ctx context.Context, name string) error {
	res, err := c.db.ExecContext(ctx, `DELETE FROM sources WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove source %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove source %s: %w", name, ErrNotFound)
	}
	return nil
}
