package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/prune"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/retention"
)

type forgetOptions struct {
	policy         retention.Policy
	within         string
	host           string
	tags           []string
	groupBy        string
	dryRun         bool
	prune          bool
	allowRemoveAll bool
	pruneOpts      pruneOptions
}

func newForgetCmd(g *Globals) *cobra.Command {
	var o forgetOptions
	c := &cobra.Command{
		Use:   "forget [SNAPSHOT...]",
		Short: "Remove snapshots, by ID or by a retention policy",
		Long: `Remove the given snapshots, or those a retention policy does not keep.

Snapshots are grouped by host and paths (--group-by) and the policy applies
to each group: --keep-last N keeps the N newest; --keep-hourly, -daily,
-weekly, -monthly and -yearly N keep the newest snapshot of each of the N
newest hours, days, weeks, months and years (local time); --keep-within
DURATION (like 2w3d or 36h) keeps those taken within that time of the
group's newest snapshot; --keep-tag keeps snapshots with that tag. -1 means
unlimited. A policy that would keep nothing is refused unless
--unsafe-allow-remove-all is given.

Forgetting removes only the snapshot objects; add --prune (or run cairn
prune) to free the space.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runForget(cmd.Context(), g, o, args)
		},
	}
	f := c.Flags()
	f.IntVar(&o.policy.Last, "keep-last", 0, "keep the `N` newest snapshots")
	f.IntVar(&o.policy.Hourly, "keep-hourly", 0, "keep the newest snapshot of each of the last `N` hours")
	f.IntVar(&o.policy.Daily, "keep-daily", 0, "keep the newest snapshot of each of the last `N` days")
	f.IntVar(&o.policy.Weekly, "keep-weekly", 0, "keep the newest snapshot of each of the last `N` weeks")
	f.IntVar(&o.policy.Monthly, "keep-monthly", 0, "keep the newest snapshot of each of the last `N` months")
	f.IntVar(&o.policy.Yearly, "keep-yearly", 0, "keep the newest snapshot of each of the last `N` years")
	f.StringVar(&o.within, "keep-within", "", "keep snapshots taken within `DURATION` (e.g. 1y6m, 2w, 36h) of the newest")
	f.StringArrayVar(&o.policy.Tags, "keep-tag", nil, "keep snapshots with this `TAG`")
	f.StringVar(&o.host, "host", "", "only consider snapshots of this host")
	f.StringArrayVar(&o.tags, "tag", nil, "only consider snapshots with this tag")
	f.StringVar(&o.groupBy, "group-by", "host,paths", "group snapshots by these fields (host, paths, tags)")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "only say what would be removed")
	f.BoolVar(&o.prune, "prune", false, "prune afterwards, freeing the space")
	f.BoolVar(&o.allowRemoveAll, "unsafe-allow-remove-all", false, "allow a policy that removes every snapshot of a group")
	o.pruneOpts.addFlags(c)
	return c
}

var withinRE = regexp.MustCompile(`^(\d+[ymwdh])+$`)

// parseWithin parses "1y6m2w3d4h" (a year is 365 days, a month 30) or any
// Go duration.
func parseWithin(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	if !withinRE.MatchString(s) {
		return 0, errors.Join(ErrUsage, fmt.Errorf("bad duration %q (use e.g. 1y6m, 2w3d or 36h)", s))
	}
	const day = 24 * time.Hour
	unit := map[byte]time.Duration{'y': 365 * day, 'm': 30 * day, 'w': 7 * day, 'd': day, 'h': time.Hour}
	var d time.Duration
	for _, m := range regexp.MustCompile(`(\d+)([ymwdh])`).FindAllStringSubmatch(s, -1) {
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return 0, errors.Join(ErrUsage, fmt.Errorf("bad duration %q", s))
		}
		d += time.Duration(n) * unit[m[2][0]]
	}
	return d, nil
}

type forgetKeptJSON struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Reasons []string  `json:"reasons"`
}

type forgetGroupJSON struct {
	Host   string           `json:"host,omitempty"`
	Paths  []string         `json:"paths,omitempty"`
	Tags   []string         `json:"tags,omitempty"`
	Keep   []forgetKeptJSON `json:"keep"`
	Remove []string         `json:"remove"`
}

type forgetJSON struct {
	Groups  []forgetGroupJSON `json:"groups,omitempty"`
	Removed []string          `json:"removed"`
	DryRun  bool              `json:"dry_run"`
	Prune   *prune.Stats      `json:"prune,omitempty"`
}

func runForget(ctx context.Context, g *Globals, o forgetOptions, ids []string) error {
	if o.within != "" {
		d, err := parseWithin(o.within)
		if err != nil {
			return err
		}
		o.policy.Within = d
	}
	by, err := retention.ParseGroupBy(o.groupBy)
	if err != nil {
		return errors.Join(ErrUsage, err)
	}
	if len(ids) > 0 && !o.policy.Empty() {
		return errors.Join(ErrUsage, errors.New("give snapshot IDs or a --keep-* policy, not both"))
	}
	if len(ids) == 0 && o.policy.Empty() && !o.allowRemoveAll {
		return errors.Join(ErrUsage, retention.ErrEmptyPolicy)
	}
	po, err := o.pruneOpts.options(g)
	if err != nil {
		return err
	}

	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	if !o.dryRun {
		lock, err := r.LockExclusive(ctx)
		if err != nil {
			return err
		}
		defer lock.Unlock(ctx)
	}

	out := forgetJSON{Removed: []string{}, DryRun: o.dryRun}
	var remove []*repo.Snapshot
	if len(ids) > 0 {
		for _, ref := range ids {
			s, err := r.FindSnapshot(ctx, ref)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(remove, func(x *repo.Snapshot) bool { return x.ID == s.ID }) {
				remove = append(remove, s)
			}
		}
	} else {
		snaps, bad, err := r.Snapshots(ctx)
		if err != nil {
			return err
		}
		for _, e := range bad {
			fmt.Fprintf(g.Stderr, "warning: %v\n", e)
		}
		var sel []*repo.Snapshot
		for _, s := range snaps {
			if (o.host == "" || s.Host == o.host) && hasAllTags(s, o.tags) {
				sel = append(sel, s)
			}
		}
		for _, grp := range retention.MakeGroups(sel, by) {
			gj := forgetGroupJSON{Host: grp.Host, Paths: grp.Paths, Tags: grp.Tags, Keep: []forgetKeptJSON{}, Remove: []string{}}
			var keep, rm []*repo.Snapshot
			var reasons = map[crypto.ID][]string{}
			if o.policy.Empty() { // --unsafe-allow-remove-all with no rule
				rm = grp.Snapshots
			} else {
				k, x, why, err := retention.Apply(grp.Snapshots, o.policy, time.Now())
				if errors.Is(err, retention.ErrKeepsNothing) && o.allowRemoveAll {
					err = nil
				}
				if err != nil {
					return fmt.Errorf("forget (host %q, paths %s): %w", grp.Host, strings.Join(grp.Paths, ","), err)
				}
				keep, rm = k, x
				for id, w := range why {
					reasons[id] = w
				}
			}
			for _, s := range keep {
				gj.Keep = append(gj.Keep, forgetKeptJSON{ID: s.ID.String(), Time: s.Time, Reasons: reasons[s.ID]})
			}
			for _, s := range rm {
				gj.Remove = append(gj.Remove, s.ID.String())
			}
			remove = append(remove, rm...)
			out.Groups = append(out.Groups, gj)
			if !g.JSON {
				printForgetGroup(g, grp, keep, rm, reasons, o.dryRun)
			}
		}
	}

	if o.dryRun {
		for _, s := range remove {
			out.Removed = append(out.Removed, s.ID.String())
		}
		if g.JSON {
			return g.printJSON(out)
		}
		g.printf("would remove %d snapshots\n", len(remove))
		if o.prune {
			g.printf("(a dry run does not prune)\n")
		}
		return nil
	}
	removed, err := retention.Remove(ctx, r, remove)
	out.Removed = append(out.Removed, removed...)
	if err != nil {
		return err
	}
	if !g.JSON {
		g.printf("removed %d snapshots\n", len(removed))
	}
	if o.prune {
		st, err := runPruneLocked(ctx, g, r, po)
		if err != nil {
			return err
		}
		out.Prune = st
		if !g.JSON {
			printPruneStats(g, st)
		}
	} else if len(removed) > 0 {
		// The forgotten snapshots go from the hosts too (prune reconciles
		// the packs).
		if err := g.reconcilePeers(ctx, r); err != nil {
			fmt.Fprintf(g.Stderr, "warning: delete on peers: %v\n", err)
		}
	}
	if g.JSON {
		return g.printJSON(out)
	}
	return nil
}

func printForgetGroup(g *Globals, grp *retention.Group, keep, rm []*repo.Snapshot, reasons map[crypto.ID][]string, dry bool) {
	var head []string
	if grp.Host != "" {
		head = append(head, "host "+grp.Host)
	}
	if len(grp.Paths) > 0 {
		head = append(head, "paths "+strings.Join(grp.Paths, ", "))
	}
	if len(grp.Tags) > 0 {
		head = append(head, "tags "+strings.Join(grp.Tags, ","))
	}
	if len(head) == 0 {
		head = append(head, "all snapshots")
	}
	g.printf("%s:\n", strings.Join(head, ", "))
	tw := g.table()
	for _, s := range keep {
		fmt.Fprintf(tw, "  keep\t%s\t%s\t%s\n", s.ID.Short(), s.Time.Local().Format(time.DateTime), strings.Join(reasons[s.ID], ", "))
	}
	verb := "remove"
	if dry {
		verb = "would remove"
	}
	for _, s := range rm {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t\n", verb, s.ID.Short(), s.Time.Local().Format(time.DateTime))
	}
	if !g.Quiet && !g.JSON {
		tw.Flush()
	}
}
