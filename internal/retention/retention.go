// Package retention decides which snapshots a policy keeps and forgets the
// others.
//
// The semantics follow restic's forget: snapshots are taken newest first;
// --keep-last N keeps the N newest; --keep-hourly/daily/weekly/monthly/
// yearly N keep the newest snapshot of each of the N newest hours, days,
// ISO weeks, months and years that have one (buckets are computed in local
// time: the location of the now passed to Apply); --keep-within D keeps
// every snapshot taken within D of the newest one (measured from the newest
// snapshot, not from now, so a machine that stopped backing up does not
// lose its history); --keep-tag keeps snapshots carrying any listed tag. A
// count of -1 means unlimited. A snapshot is kept if any rule keeps it.
//
// A policy that keeps nothing is refused: the empty policy, and a policy
// that would remove every snapshot of a group. Removing everything must be
// asked for explicitly (RemoveAll).
package retention

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
)

// Policy says which snapshots to keep.
type Policy struct {
	Last, Hourly, Daily, Weekly, Monthly, Yearly int
	Within                                       time.Duration
	Tags                                         []string
}

// Empty reports whether the policy keeps nothing by itself.
func (p Policy) Empty() bool {
	return p.Last == 0 && p.Hourly == 0 && p.Daily == 0 && p.Weekly == 0 && p.Monthly == 0 &&
		p.Yearly == 0 && p.Within <= 0 && len(p.Tags) == 0
}

func (p Policy) String() string {
	var parts []string
	add := func(name string, n int) {
		switch {
		case n < 0:
			parts = append(parts, name+" all")
		case n > 0:
			parts = append(parts, fmt.Sprintf("%s %d", name, n))
		}
	}
	add("last", p.Last)
	add("hourly", p.Hourly)
	add("daily", p.Daily)
	add("weekly", p.Weekly)
	add("monthly", p.Monthly)
	add("yearly", p.Yearly)
	if p.Within > 0 {
		parts = append(parts, "within "+p.Within.String())
	}
	if len(p.Tags) > 0 {
		parts = append(parts, "tags "+strings.Join(p.Tags, ","))
	}
	if len(parts) == 0 {
		return "keep nothing"
	}
	return "keep " + strings.Join(parts, ", ")
}

// Errors of Apply and Forget.
var (
	// ErrEmptyPolicy: the policy has no rule, so it would keep nothing.
	ErrEmptyPolicy = errors.New("the retention policy keeps nothing; give at least one --keep-* option")
	// ErrKeepsNothing: the policy would remove every snapshot of a group.
	ErrKeepsNothing = errors.New("the retention policy would remove every snapshot of the group")
)

type bucketRule struct {
	name  string
	count int
	key   func(time.Time) int
}

// Apply sorts snaps into those the policy keeps and those it removes, both
// newest first, with the reasons each kept snapshot is kept. It does not
// touch the repository.
func Apply(snaps []*repo.Snapshot, p Policy, now time.Time) (keep, remove []*repo.Snapshot, reasons map[crypto.ID][]string, err error) {
	if p.Empty() {
		return nil, nil, nil, ErrEmptyPolicy
	}
	loc := now.Location()
	list := slices.Clone(snaps)
	sort.SliceStable(list, func(a, b int) bool {
		if !list[a].Time.Equal(list[b].Time) {
			return list[a].Time.After(list[b].Time)
		}
		return list[a].ID.String() > list[b].ID.String()
	})
	rules := []bucketRule{
		{"last", p.Last, nil},
		{"hourly", p.Hourly, func(t time.Time) int { return t.Year()*1000000 + int(t.Month())*10000 + t.Day()*100 + t.Hour() }},
		{"daily", p.Daily, func(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }},
		{"weekly", p.Weekly, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
		{"monthly", p.Monthly, func(t time.Time) int { return t.Year()*100 + int(t.Month()) }},
		{"yearly", p.Yearly, func(t time.Time) int { return t.Year() }},
	}
	last := make([]int, len(rules))
	left := make([]int, len(rules))
	for i, r := range rules {
		last[i] = -1
		left[i] = r.count
	}
	reasons = map[crypto.ID][]string{}
	var newest time.Time
	if len(list) > 0 {
		newest = list[0].Time
	}
	for _, s := range list {
		var why []string
		t := s.Time.In(loc)
		for i, r := range rules {
			if left[i] == 0 {
				continue
			}
			if r.key == nil { // last: every snapshot is its own bucket
				why = append(why, "last snapshot")
				left[i]--
				continue
			}
			if k := r.key(t); k != last[i] {
				last[i] = k
				left[i]--
				why = append(why, r.name+" snapshot")
			}
		}
		if p.Within > 0 && !s.Time.Before(newest.Add(-p.Within)) {
			why = append(why, "within "+p.Within.String()+" of the newest")
		}
		for _, tag := range p.Tags {
			if slices.Contains(s.Tags, tag) {
				why = append(why, "tagged "+tag)
			}
		}
		if len(why) > 0 {
			keep = append(keep, s)
			reasons[s.ID] = why
		} else {
			remove = append(remove, s)
		}
	}
	if len(keep) == 0 && len(remove) > 0 {
		return nil, remove, reasons, ErrKeepsNothing
	}
	return keep, remove, reasons, nil
}

// SamePaths reports whether two path lists name the same paths, in any
// order (cleaned: "/data/" and "/data" are the same).
func SamePaths(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	for i := range x {
		x[i], y[i] = filepath.Clean(x[i]), filepath.Clean(y[i])
	}
	sort.Strings(x)
	sort.Strings(y)
	return slices.Equal(x, y)
}

// GroupBy says which fields put snapshots into one retention group.
type GroupBy struct{ Host, Paths, Tags bool }

// ParseGroupBy parses "host,paths" (any of host, paths, tags; "" for one
// group of everything).
func ParseGroupBy(s string) (GroupBy, error) {
	var g GroupBy
	for _, f := range strings.Split(s, ",") {
		switch strings.TrimSpace(f) {
		case "":
		case "host":
			g.Host = true
		case "paths":
			g.Paths = true
		case "tags":
			g.Tags = true
		default:
			return g, fmt.Errorf("unknown group-by field %q (use host, paths, tags)", f)
		}
	}
	return g, nil
}

// Group is a set of snapshots retention treats together.
type Group struct {
	Host      string           `json:"host,omitempty"`
	Paths     []string         `json:"paths,omitempty"`
	Tags      []string         `json:"tags,omitempty"`
	Snapshots []*repo.Snapshot `json:"-"`
}

// MakeGroups splits snapshots into groups, in a stable order.
func MakeGroups(snaps []*repo.Snapshot, by GroupBy) []*Group {
	byKey := map[string]*Group{}
	var out []*Group
	for _, s := range snaps {
		var g Group
		if by.Host {
			g.Host = s.Host
		}
		if by.Paths {
			g.Paths = slices.Clone(s.Paths)
			sort.Strings(g.Paths)
		}
		if by.Tags {
			g.Tags = slices.Clone(s.Tags)
			sort.Strings(g.Tags)
		}
		key := g.Host + "\x00" + strings.Join(g.Paths, "\x00") + "\x01" + strings.Join(g.Tags, "\x00")
		have, ok := byKey[key]
		if !ok {
			have = &g
			byKey[key] = have
			out = append(out, have)
		}
		have.Snapshots = append(have.Snapshots, s)
	}
	return out
}

// Forget removes the snapshots of the given host+paths group that the
// policy does not keep, under the exclusive lock, and returns their IDs.
// It does not prune: the data stays until prune runs.
func Forget(ctx context.Context, r *repo.Repository, p Policy, host string, paths []string) (removed []string, err error) {
	if p.Empty() {
		return nil, ErrEmptyPolicy
	}
	lock, err := r.LockExclusive(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(ctx)
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("forget: %w", err)
	}
	var group []*repo.Snapshot
	for _, s := range snaps {
		if s.Host == host && SamePaths(s.Paths, paths) {
			group = append(group, s)
		}
	}
	if len(group) == 0 {
		return nil, nil
	}
	_, remove, _, err := Apply(group, p, r.Now())
	if err != nil {
		return nil, fmt.Errorf("forget %s %s: %w", host, strings.Join(paths, ","), err)
	}
	return Remove(ctx, r, remove)
}

// Remove deletes snapshot objects (the caller holds the exclusive lock)
// and returns the IDs removed. A snapshot already gone counts as removed.
func Remove(ctx context.Context, r *repo.Repository, snaps []*repo.Snapshot) ([]string, error) {
	var removed []string
	for _, s := range snaps {
		if err := r.DeleteSnapshot(ctx, s.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return removed, fmt.Errorf("forget snapshot %s: %w", s.ID.Short(), err)
		}
		removed = append(removed, s.ID.String())
	}
	return removed, nil
}
