package cli

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
)

func newStatusCmd(g *Globals) *cobra.Command {
	var within time.Duration
	var maintain bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Show sources, snapshots, and how well the backups are placed on peers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if maintain {
				if err := g.maintainPeers(cmd.Context()); err != nil {
					return err
				}
			}
			return runStatus(cmd.Context(), g, within)
		},
	}
	c.Flags().DurationVar(&within, "expiring", 30*24*time.Hour, "list leases that end within this time")
	c.Flags().BoolVar(&maintain, "maintain", false, "first run a life-cycle round now: complete placements, renew leases, audit hosts, repair")
	return c
}

type statusJSON struct {
	Repository  string           `json:"repository"`
	OwnerID     string           `json:"owner_id"`
	Sources     []sourceStatus   `json:"sources"`
	StoredBytes int64            `json:"stored_bytes"`
	Placement   placementStatus  `json:"placement"`
	Expiring    []leaseJSON      `json:"expiring_leases"`
	Hosts       []hostStatusJSON `json:"hosts"`
	Warnings    []string         `json:"warnings,omitempty"`
}

type sourceStatus struct {
	Name         string    `json:"name"`
	Host         string    `json:"host"`
	Paths        []string  `json:"paths"`
	Snapshots    int       `json:"snapshots"`
	Latest       time.Time `json:"latest,omitzero"`
	LogicalBytes int64     `json:"logical_bytes"`
	AddedBytes   int64     `json:"stored_bytes"`
}

type placementStatus struct {
	Placed         int `json:"placed"`
	Degraded       int `json:"degraded"`
	Missing        int `json:"missing"`
	MetaObjects    int `json:"meta_objects"`
	MetaIncomplete int `json:"meta_incomplete"`
}

type leaseJSON struct {
	Host   string    `json:"host"`
	Object string    `json:"object"`
	Until  time.Time `json:"until"`
}

type hostStatusJSON struct {
	NodeID       string    `json:"node_id"`
	Pieces       int       `json:"pieces"`
	Bytes        int64     `json:"bytes"`
	Bad          int       `json:"bad"`
	AuditsOK     int       `json:"audits_ok"`
	AuditsFailed int       `json:"audits_failed"`
	Reputation   float64   `json:"reputation"`
	LastSeen     time.Time `json:"last_seen,omitzero"`
	Gone         bool      `json:"gone"`
}

func runStatus(ctx context.Context, g *Globals, within time.Duration) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	dir, inHome, _ := g.repoDir()
	out := statusJSON{Repository: dir, OwnerID: r.Keys().OwnerID(), Sources: []sourceStatus{}, Expiring: []leaseJSON{}, Hosts: []hostStatusJSON{}}
	snaps, bad, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, e := range bad {
		out.Warnings = append(out.Warnings, e.Error())
	}
	// Sizes from the index: listing packs could mean asking every host.
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	for _, size := range r.Index().Packs() {
		out.StoredBytes += size
	}
	var h home.Home
	if inHome {
		h, _ = g.home()
	}
	out.Sources = sourcesStatus(ctx, h, inHome, snaps)
	if inHome {
		if _, err := os.Stat(peerstore.PlacementPath(h)); err == nil {
			st, err := placementOf(ctx, h, within)
			if err != nil {
				out.Warnings = append(out.Warnings, err.Error())
			} else {
				out.Placement = placementStatus{Placed: st.Packs.Placed, Degraded: st.Packs.Degraded, Missing: st.Packs.Missing,
					MetaObjects: st.MetaObjects, MetaIncomplete: st.MetaIncomplete}
				for _, l := range st.Expiring {
					out.Expiring = append(out.Expiring, leaseJSON{Host: l.Host, Object: l.Handle.String(), Until: l.Until})
				}
				for _, hs := range st.Hosts {
					out.Hosts = append(out.Hosts, hostStatusJSON{NodeID: hs.ID, Pieces: hs.Pieces, Bytes: hs.Bytes, Bad: hs.Bad,
						AuditsOK: hs.AuditsOK, AuditsFailed: hs.AuditsFailed, Reputation: hs.Reputation, LastSeen: hs.LastSeen, Gone: hs.Gone})
				}
			}
		}
	}
	if g.JSON {
		return g.printJSON(out)
	}
	g.printf("repository %s (owner %s)\n", out.Repository, out.OwnerID[:16])
	g.printf("stored: %s in packs\n\n", humanBytes(out.StoredBytes))
	tw := g.table()
	fmt.Fprintln(tw, "Source\tSnapshots\tLatest\tSize\tPaths")
	for _, s := range out.Sources {
		latest := "-"
		if !s.Latest.IsZero() {
			latest = s.Latest.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Name, s.Snapshots, latest, humanBytes(s.LogicalBytes), strings.Join(s.Paths, ", "))
	}
	tw.Flush()
	p := out.Placement
	g.printf("\npeers: %d packs placed, %d degraded, %d missing; metadata on every host: %d of %d\n",
		p.Placed, p.Degraded, p.Missing, p.MetaObjects-p.MetaIncomplete, p.MetaObjects)
	if len(out.Hosts) > 0 {
		tw = g.table()
		fmt.Fprintln(tw, "Host\tPieces\tHeld\tAudits ok/failed\tReputation\tLast seen")
		for _, hs := range out.Hosts {
			seen := "-"
			if !hs.LastSeen.IsZero() {
				seen = hs.LastSeen.Local().Format("2006-01-02 15:04")
			}
			if hs.Gone {
				seen += " (gone)"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d/%d\t%.2f\t%s\n", short(hs.NodeID), hs.Pieces, humanBytes(hs.Bytes), hs.AuditsOK, hs.AuditsFailed, hs.Reputation, seen)
		}
		tw.Flush()
	}
	if n := len(out.Expiring); n > 0 {
		g.printf("%d leases end within %s; the daemon renews them\n", n, humanDuration(within))
	}
	for _, w := range out.Warnings {
		fmt.Fprintf(g.Stderr, "warning: %s\n", w)
	}
	return nil
}

func placementOf(ctx context.Context, h home.Home, within time.Duration) (placement.Status, error) {
	e, err := placement.OpenReadOnly(ctx, placement.Options{Path: peerstore.PlacementPath(h)})
	if err != nil {
		return placement.Status{}, err
	}
	defer e.Close()
	return e.Status(ctx, within)
}

// sourcesStatus groups snapshots by source: the catalog's sources by their
// paths, and every other host+paths group under its paths.
func sourcesStatus(ctx context.Context, h home.Home, inHome bool, snaps []*repo.Snapshot) []sourceStatus {
	names := map[string]string{}
	if inHome {
		if _, err := os.Stat(h.CatalogPath()); err == nil {
			if c, err := catalog.Open(ctx, h.CatalogPath(), catalog.Options{}); err == nil {
				if srcs, err := c.Sources(ctx); err == nil {
					for _, s := range srcs {
						names[groupKey("", s.Paths)] = s.Name
					}
				}
				c.Close()
			}
		}
	}
	groups := map[string]*sourceStatus{}
	var order []string
	for _, s := range snaps {
		k := groupKey(s.Host, s.Paths)
		st := groups[k]
		if st == nil {
			name := names[groupKey("", s.Paths)]
			if name == "" {
				name = strings.Join(s.Paths, ",")
			}
			st = &sourceStatus{Name: name, Host: s.Host, Paths: s.Paths}
			groups[k] = st
			order = append(order, k)
		}
		st.Snapshots++
		if s.Time.After(st.Latest) {
			st.Latest = s.Time
			if s.Summary != nil {
				st.LogicalBytes = s.Summary.Bytes
			}
		}
		if s.Summary != nil {
			st.AddedBytes += s.Summary.StoredAdded
		}
	}
	sort.Strings(order)
	out := []sourceStatus{}
	for _, k := range order {
		out = append(out, *groups[k])
	}
	return out
}

func groupKey(host string, paths []string) string {
	p := append([]string{}, paths...)
	sort.Strings(p)
	return host + "\x00" + strings.Join(p, "\x00")
}
