package retention_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/retention"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// snap makes a snapshot at a UTC time "2006-01-02 15:04", named by it.
func snap(t *testing.T, ts string, tags ...string) *repo.Snapshot {
	t.Helper()
	tm, err := time.Parse("2006-01-02 15:04", ts)
	if err != nil {
		t.Fatal(err)
	}
	return &repo.Snapshot{Time: tm, Tags: tags, ID: crypto.Hash([]byte(ts)), Host: ts}
}

var plus2 = time.FixedZone("UTC+2", 2*3600)

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		snaps []string // UTC times; "|tag" appended adds a tag
		p     retention.Policy
		loc   *time.Location
		keep  []string
		err   error
	}{
		{
			name:  "last",
			snaps: []string{"2026-01-01 10:00", "2026-01-01 11:00", "2026-01-01 12:00", "2026-01-01 13:00"},
			p:     retention.Policy{Last: 2},
			keep:  []string{"2026-01-01 13:00", "2026-01-01 12:00"},
		},
		{
			name:  "last more than there are",
			snaps: []string{"2026-01-01 10:00", "2026-01-01 11:00"},
			p:     retention.Policy{Last: 5},
			keep:  []string{"2026-01-01 11:00", "2026-01-01 10:00"},
		},
		{
			name:  "hourly keeps the newest of each hour",
			snaps: []string{"2026-01-01 10:05", "2026-01-01 10:55", "2026-01-01 11:10", "2026-01-01 11:20", "2026-01-01 12:00"},
			p:     retention.Policy{Hourly: 2},
			keep:  []string{"2026-01-01 12:00", "2026-01-01 11:20"},
		},
		{
			name:  "daily",
			snaps: []string{"2026-01-01 10:00", "2026-01-01 20:00", "2026-01-02 09:00", "2026-01-02 21:00", "2026-01-03 12:00"},
			p:     retention.Policy{Daily: 2},
			keep:  []string{"2026-01-03 12:00", "2026-01-02 21:00"},
		},
		{
			name:  "daily in UTC",
			snaps: []string{"2026-01-01 21:00", "2026-01-01 23:30", "2026-01-02 05:00"},
			p:     retention.Policy{Daily: 5},
			loc:   time.UTC,
			keep:  []string{"2026-01-02 05:00", "2026-01-01 23:30"},
		},
		{
			name:  "daily buckets follow local time",
			snaps: []string{"2026-01-01 21:00", "2026-01-01 23:30", "2026-01-02 05:00"},
			p:     retention.Policy{Daily: 5},
			loc:   plus2, // 23:30 UTC is already January 2nd here
			keep:  []string{"2026-01-02 05:00", "2026-01-01 21:00"},
		},
		{
			name: "weekly uses ISO weeks",
			// 2026-01-04 is a Sunday (week 1), 2026-01-05 a Monday (week 2).
			snaps: []string{"2025-12-29 10:00", "2026-01-04 10:00", "2026-01-05 10:00", "2026-01-11 10:00"},
			p:     retention.Policy{Weekly: 2},
			keep:  []string{"2026-01-11 10:00", "2026-01-04 10:00"},
		},
		{
			name:  "monthly and yearly",
			snaps: []string{"2024-06-01 10:00", "2024-12-31 10:00", "2025-03-01 10:00", "2025-11-30 10:00", "2026-01-15 10:00", "2026-02-01 10:00"},
			p:     retention.Policy{Monthly: 2, Yearly: 3},
			keep:  []string{"2026-02-01 10:00", "2026-01-15 10:00", "2025-11-30 10:00", "2024-12-31 10:00"},
		},
		{
			name:  "unlimited daily",
			snaps: []string{"2026-01-01 10:00", "2026-01-01 11:00", "2026-01-02 10:00", "2026-01-03 10:00"},
			p:     retention.Policy{Daily: -1},
			keep:  []string{"2026-01-03 10:00", "2026-01-02 10:00", "2026-01-01 11:00"},
		},
		{
			name:  "within counts from the newest snapshot",
			snaps: []string{"2020-01-01 10:00", "2020-01-05 09:59", "2020-01-06 09:00", "2020-01-07 10:00"},
			p:     retention.Policy{Within: 48 * time.Hour},
			keep:  []string{"2020-01-07 10:00", "2020-01-06 09:00"},
		},
		{
			name:  "keep tags",
			snaps: []string{"2026-01-01 10:00|important", "2026-01-02 10:00", "2026-01-03 10:00|monthly", "2026-01-04 10:00"},
			p:     retention.Policy{Last: 1, Tags: []string{"important", "monthly"}},
			keep:  []string{"2026-01-04 10:00", "2026-01-03 10:00", "2026-01-01 10:00"},
		},
		{
			name:  "rules combine",
			snaps: []string{"2026-01-01 10:00", "2026-01-01 11:00", "2026-01-02 10:00", "2026-01-02 11:00", "2026-01-03 10:00"},
			p:     retention.Policy{Last: 2, Daily: 3},
			keep:  []string{"2026-01-03 10:00", "2026-01-02 11:00", "2026-01-01 11:00"},
		},
		{
			name:  "empty policy is refused",
			snaps: []string{"2026-01-01 10:00"},
			p:     retention.Policy{},
			err:   retention.ErrEmptyPolicy,
		},
		{
			name:  "a policy keeping nothing is refused",
			snaps: []string{"2026-01-01 10:00", "2026-01-02 10:00"},
			p:     retention.Policy{Tags: []string{"nope"}},
			err:   retention.ErrKeepsNothing,
		},
		{
			name: "no snapshots",
			p:    retention.Policy{Last: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var snaps []*repo.Snapshot
			for _, s := range tc.snaps {
				ts, tag, _ := cut(s)
				var tags []string
				if tag != "" {
					tags = []string{tag}
				}
				snaps = append(snaps, snap(t, ts, tags...))
			}
			// Order must not matter.
			slices.Reverse(snaps)
			loc := tc.loc
			if loc == nil {
				loc = time.UTC
			}
			keep, remove, reasons, err := retention.Apply(snaps, tc.p, time.Date(2026, 6, 1, 0, 0, 0, 0, loc))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			var got []string
			for _, s := range keep {
				got = append(got, s.Host)
				if len(reasons[s.ID]) == 0 {
					t.Errorf("%s kept without a reason", s.Host)
				}
			}
			if !slices.Equal(got, tc.keep) {
				t.Errorf("kept %q, want %q", got, tc.keep)
			}
			if len(keep)+len(remove) != len(snaps) {
				t.Errorf("%d kept + %d removed of %d", len(keep), len(remove), len(snaps))
			}
		})
	}
}

func cut(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '|' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestGroups(t *testing.T) {
	a := &repo.Snapshot{Host: "a", Paths: []string{"/x", "/y"}}
	b := &repo.Snapshot{Host: "a", Paths: []string{"/y", "/x"}}
	c := &repo.Snapshot{Host: "b", Paths: []string{"/x", "/y"}}
	by, err := retention.ParseGroupBy("host,paths")
	if err != nil {
		t.Fatal(err)
	}
	if g := retention.MakeGroups([]*repo.Snapshot{a, b, c}, by); len(g) != 2 || len(g[0].Snapshots) != 2 {
		t.Fatalf("groups: %+v", g)
	}
	by, _ = retention.ParseGroupBy("paths")
	if g := retention.MakeGroups([]*repo.Snapshot{a, b, c}, by); len(g) != 1 {
		t.Fatalf("groups by paths: %+v", g)
	}
	if _, err := retention.ParseGroupBy("colour"); err == nil {
		t.Fatal("bad group-by accepted")
	}
}

func TestForget(t *testing.T) {
	ctx := context.Background()
	st, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tree, err := r.SaveTree(ctx, &repo.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mine []string
	for i := 0; i < 5; i++ {
		for _, host := range []string{"h1", "h2"} {
			s := &repo.Snapshot{Time: base.Add(time.Duration(i) * 24 * time.Hour), Host: host, Paths: []string{"/data"}, Tree: tree}
			id, err := r.SaveSnapshot(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			if host == "h1" {
				mine = append(mine, id.String())
			}
		}
	}
	removed, err := retention.Forget(ctx, r, retention.Policy{Last: 2}, "h1", []string{"/data"})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(removed)
	want := slices.Clone(mine[:3])
	sort.Strings(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 7 {
		t.Fatalf("%d snapshots left, want 7", len(snaps))
	}
	if _, err := retention.Forget(ctx, r, retention.Policy{}, "h1", []string{"/data"}); !errors.Is(err, retention.ErrEmptyPolicy) {
		t.Fatalf("empty policy: %v", err)
	}
	// The lock is released.
	if n, _ := os.ReadDir(filepath.Join(st.Root(), "locks")); len(n) != 0 {
		t.Fatalf("%d locks left", len(n))
	}
}
