package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/schedule"
)

func newSourceCmd(g *Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "source",
		Short: "Add, list, show, edit and remove sources (folders backed up on a schedule)",
		Long: `A source is a set of folders backed up together, with its schedule, excludes,
hooks, retention, redundancy and traffic settings. "cairn run NAME" backs one
up now; the daemon runs them on their schedules.`,
	}
	c.AddCommand(newSourceAddCmd(g), newSourceListCmd(g), newSourceShowCmd(g), newSourceEditCmd(g), newSourceRemoveCmd(g))
	return c
}

// sourceFlags are the settings of a source as flags, shared by add and edit.
type sourceFlags struct {
	schedule, pre, post, redundancy, window, limitUp, limitDown string
	excludes, paths                                             []string
	keepLast, keepHourly, keepDaily, keepWeekly                 int
	keepMonthly, keepYearly                                     int
	keepWithin, rename                                          string
	noExcludes                                                  bool
}

func (o *sourceFlags) register(f *pflag.FlagSet, edit bool) {
	f.StringVar(&o.schedule, "schedule", "", "when to run: cron fields or words like `SPEC` \"daily 02:30\", \"weekdays 18:00\", \"every 6h\" (\"\" = on demand)")
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "leave out paths matching `PATTERN` (repeat for several)")
	f.StringVar(&o.pre, "pre", "", "shell `CMD` run before reading; its failure fails the run")
	f.StringVar(&o.post, "post", "", "shell `CMD` run after, always, with CAIRN_RUN_STATUS set")
	f.IntVar(&o.keepLast, "keep-last", 0, "keep the last `N` snapshots")
	f.IntVar(&o.keepHourly, "keep-hourly", 0, "keep the last snapshot of each of the last `N` hours")
	f.IntVar(&o.keepDaily, "keep-daily", 0, "keep the last snapshot of each of the last `N` days")
	f.IntVar(&o.keepWeekly, "keep-weekly", 0, "keep the last snapshot of each of the last `N` weeks")
	f.IntVar(&o.keepMonthly, "keep-monthly", 0, "keep the last snapshot of each of the last `N` months")
	f.IntVar(&o.keepYearly, "keep-yearly", 0, "keep the last snapshot of each of the last `N` years")
	f.StringVar(&o.keepWithin, "keep-within", "", "keep every snapshot younger than `DUR` (e.g. 36h, 14d, 2w, 1y)")
	f.StringVar(&o.redundancy, "redundancy", "", "copies on peers, `N` (replicas) or K+M (erasure code, e.g. 4+2)")
	f.StringVar(&o.window, "window", "", "send to WAN peers only in this daily `SPEC`, e.g. 22:00-06:00")
	f.StringVar(&o.limitUp, "limit-up", "", "upload limit for this source, `RATE` in bytes/s (e.g. 2MiB, 500k)")
	f.StringVar(&o.limitDown, "limit-down", "", "download limit for this source, `RATE` in bytes/s")
	if edit {
		f.StringArrayVar(&o.paths, "path", nil, "replace the source's paths (repeat for several)")
		f.BoolVar(&o.noExcludes, "no-excludes", false, "drop every exclude pattern")
		f.StringVar(&o.rename, "name", "", "rename the source to `NAME`")
	}
}

// apply sets on s the settings whose flags were given (all of them when
// all is set, for add).
func (o *sourceFlags) apply(s *catalog.Source, f *pflag.FlagSet, all bool) error {
	set := func(name string) bool { return all || f.Changed(name) }
	if set("schedule") {
		spec := strings.TrimSpace(o.schedule)
		if spec != "" && spec != "manual" {
			sch, err := schedule.Parse(spec)
			if err != nil {
				return usageErr(err)
			}
			spec = sch.String()
		} else {
			spec = ""
		}
		s.Schedule = spec
	}
	if set("path") && len(o.paths) > 0 {
		paths, err := absPaths(o.paths)
		if err != nil {
			return err
		}
		s.Paths = paths
	}
	if o.noExcludes {
		s.Excludes = []string{}
	}
	if set("exclude") {
		s.Excludes = append([]string{}, o.excludes...)
		if s.Excludes == nil {
			s.Excludes = []string{}
		}
	}
	if set("pre") {
		s.PreHook = o.pre
	}
	if set("post") {
		s.PostHook = o.post
	}
	for _, k := range []struct {
		flag string
		v    int
		dst  *int
	}{
		{"keep-last", o.keepLast, &s.Retention.Last}, {"keep-hourly", o.keepHourly, &s.Retention.Hourly},
		{"keep-daily", o.keepDaily, &s.Retention.Daily}, {"keep-weekly", o.keepWeekly, &s.Retention.Weekly},
		{"keep-monthly", o.keepMonthly, &s.Retention.Monthly}, {"keep-yearly", o.keepYearly, &s.Retention.Yearly},
	} {
		if set(k.flag) {
			if k.v < 0 {
				return usageErr(fmt.Errorf("--%s must not be negative", k.flag))
			}
			*k.dst = k.v
		}
	}
	if set("keep-within") {
		d, err := parseKeepWithin(o.keepWithin)
		if err != nil {
			return usageErr(err)
		}
		s.Retention.Within = d
	}
	if set("redundancy") {
		r, err := parseRedundancy(o.redundancy)
		if err != nil {
			return usageErr(err)
		}
		s.Redundancy = r
	}
	if set("window") {
		w, err := schedule.ParseWindow(o.window)
		if err != nil {
			return usageErr(err)
		}
		s.Window = ""
		if !w.Always() {
			s.Window = w.String()
		}
	}
	if set("limit-up") {
		r, err := schedule.ParseRate(o.limitUp)
		if err != nil {
			return usageErr(fmt.Errorf("--limit-up: %w", err))
		}
		s.LimitUp = r
	}
	if set("limit-down") {
		r, err := schedule.ParseRate(o.limitDown)
		if err != nil {
			return usageErr(fmt.Errorf("--limit-down: %w", err))
		}
		s.LimitDown = r
	}
	if f.Changed("name") {
		s.Name = o.rename
	}
	return nil
}

func usageErr(err error) error { return errors.Join(ErrUsage, err) }

// parseKeepWithin reads a Go duration or a number of days (d), weeks (w),
// months (m, 30 days) or years (y, 365 days); "" is zero.
func parseKeepWithin(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'm': 30 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if u, ok := units[s[len(s)-1]]; ok {
		if n, err := strconv.Atoi(s[:len(s)-1]); err == nil && n > 0 && n < 10000 {
			return time.Duration(n) * u, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("--keep-within %q: want a duration like 36h, 14d, 2w, 6m or 1y", s)
	}
	return d, nil
}

// parseRedundancy checks "N" (copies) or "K+M" (erasure code) as the
// placement package reads it; "" is the node's default.
func parseRedundancy(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	r, err := placement.ParseRedundancy(s)
	if err != nil {
		return "", fmt.Errorf("--redundancy: %w", err)
	}
	return r.String(), nil
}

func absPaths(in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for _, p := range in {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		if _, err := os.Lstat(abs); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, usageErr(fmt.Errorf("path %s does not exist", p))
			}
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		out = append(out, abs)
	}
	return out, nil
}

// openCatalog opens the home's catalog. With create unset and no catalog
// yet, it returns nil and no error: there is nothing to list.
func (g *Globals) openCatalog(ctx context.Context, create bool) (*catalog.Catalog, error) {
	h, err := g.home()
	if err != nil {
		return nil, err
	}
	if !create {
		if _, err := os.Stat(h.CatalogPath()); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	} else if err := h.Ensure(); err != nil {
		return nil, err
	}
	return catalog.Open(ctx, h.CatalogPath(), catalog.Options{})
}

func newSourceAddCmd(g *Globals) *cobra.Command {
	var o sourceFlags
	c := &cobra.Command{
		Use:   "add NAME PATH...",
		Short: "Add a source",
		Example: `  cairn source add docs ~/Documents --schedule "daily 02:30" --keep-daily 7 --keep-weekly 4
  cairn source add db /var/backups/db --pre "pg_dump -f /var/backups/db/dump.sql app" --schedule "every 6h"`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := catalog.ValidName(args[0]); err != nil {
				return usageErr(err)
			}
			paths, err := absPaths(args[1:])
			if err != nil {
				return err
			}
			s := &catalog.Source{Name: args[0], Paths: paths}
			if err := o.apply(s, cmd.Flags(), true); err != nil {
				return err
			}
			cat, err := g.openCatalog(ctx, true)
			if err != nil {
				return err
			}
			defer cat.Close()
			if err := cat.AddSource(ctx, s); err != nil {
				if errors.Is(err, catalog.ErrExists) {
					return fmt.Errorf("source %s already exists (change it with: cairn source edit %s)", s.Name, s.Name)
				}
				return err
			}
			if g.JSON {
				return g.printJSON(toSourceJSON(s, nil))
			}
			g.printf("source %s added", s.Name)
			if s.Schedule != "" {
				g.printf(", runs %s", s.Schedule)
			}
			g.printf("\n")
			return nil
		},
	}
	o.register(c.Flags(), false)
	return c
}

func newSourceEditCmd(g *Globals) *cobra.Command {
	var o sourceFlags
	c := &cobra.Command{
		Use:   "edit NAME",
		Short: "Change a source's settings (only the flags given)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if cmd.Flags().NFlag() == 0 {
				return usageErr(errors.New("nothing to change: give the settings to change as flags (see --help)"))
			}
			cat, err := g.openCatalog(ctx, true)
			if err != nil {
				return err
			}
			defer cat.Close()
			s, err := cat.Source(ctx, args[0])
			if err != nil {
				return err
			}
			if err := o.apply(s, cmd.Flags(), false); err != nil {
				return err
			}
			if err := cat.UpdateSource(ctx, s); err != nil {
				return err
			}
			if g.JSON {
				return g.printJSON(toSourceJSON(s, nil))
			}
			g.printf("source %s changed\n", s.Name)
			return nil
		},
	}
	o.register(c.Flags(), true)
	return c
}

func newSourceRemoveCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a source (its snapshots and run history stay)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cat, err := g.openCatalog(ctx, false)
			if err != nil {
				return err
			}
			if cat == nil {
				return fmt.Errorf("source %s: %w", args[0], catalog.ErrNotFound)
			}
			defer cat.Close()
			if err := cat.RemoveSource(ctx, args[0]); err != nil {
				return err
			}
			g.printf("source %s removed; its snapshots and run history stay\n", args[0])
			return nil
		},
	}
}

// sourceJSON is a source as listings print it.
type sourceJSON struct {
	Name       string        `json:"name"`
	Paths      []string      `json:"paths"`
	Excludes   []string      `json:"excludes"`
	Schedule   string        `json:"schedule"`
	Next       *time.Time    `json:"next,omitempty"`
	PreHook    string        `json:"pre_hook,omitempty"`
	PostHook   string        `json:"post_hook,omitempty"`
	Retention  retentionJSON `json:"retention"`
	Redundancy string        `json:"redundancy,omitempty"`
	Window     string        `json:"window,omitempty"`
	LimitUp    int64         `json:"limit_up,omitempty"`
	LimitDown  int64         `json:"limit_down,omitempty"`
	Created    time.Time     `json:"created"`
	Updated    time.Time     `json:"updated"`
	LastRun    *catalog.Run  `json:"last_run,omitempty"`
}

type retentionJSON struct {
	Last    int    `json:"last,omitempty"`
	Hourly  int    `json:"hourly,omitempty"`
	Daily   int    `json:"daily,omitempty"`
	Weekly  int    `json:"weekly,omitempty"`
	Monthly int    `json:"monthly,omitempty"`
	Yearly  int    `json:"yearly,omitempty"`
	Within  string `json:"within,omitempty"`
}

func toSourceJSON(s *catalog.Source, last *catalog.Run) sourceJSON {
	j := sourceJSON{Name: s.Name, Paths: s.Paths, Excludes: s.Excludes, Schedule: s.Schedule, PreHook: s.PreHook,
		PostHook: s.PostHook, Redundancy: s.Redundancy, Window: s.Window, LimitUp: s.LimitUp, LimitDown: s.LimitDown,
		Created: s.Created, Updated: s.Updated, LastRun: last,
		Retention: retentionJSON{Last: s.Retention.Last, Hourly: s.Retention.Hourly, Daily: s.Retention.Daily,
			Weekly: s.Retention.Weekly, Monthly: s.Retention.Monthly, Yearly: s.Retention.Yearly}}
	if s.Retention.Within > 0 {
		j.Retention.Within = s.Retention.Within.String()
	}
	if j.Excludes == nil {
		j.Excludes = []string{}
	}
	if next := nextRun(s, last); !next.IsZero() {
		j.Next = &next
	}
	return j
}

// nextRun is when the scheduler will next run the source (in the past when
// it is due now), or zero for a source without schedule.
func nextRun(s *catalog.Source, last *catalog.Run) time.Time {
	if s.Schedule == "" {
		return time.Time{}
	}
	sch, err := schedule.Parse(s.Schedule)
	if err != nil {
		return time.Time{}
	}
	after := s.Created
	if last != nil {
		after = last.Started
	}
	return sch.Next(after, time.Local)
}

func newSourceListCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List sources with their schedule and last run",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := []sourceJSON{}
			cat, err := g.openCatalog(ctx, false)
			if err != nil {
				return err
			}
			if cat != nil {
				defer cat.Close()
				sources, err := cat.Sources(ctx)
				if err != nil {
					return err
				}
				for _, s := range sources {
					last, err := cat.LastRun(ctx, s.Name)
					if err != nil {
						return err
					}
					out = append(out, toSourceJSON(s, last))
				}
			}
			if g.JSON {
				return g.printJSON(out)
			}
			if len(out) == 0 {
				g.printf("no sources yet; add one with: cairn source add NAME PATH...\n")
				return nil
			}
			tw := g.table()
			fmt.Fprintln(tw, "NAME\tPATHS\tSCHEDULE\tNEXT\tLAST RUN\tSTATUS")
			for _, s := range out {
				sched, next, lastAt, status := "on demand", "-", "never", "-"
				if s.Schedule != "" {
					sched = s.Schedule
				}
				if s.Next != nil {
					next = s.Next.Local().Format("2006-01-02 15:04")
					if !s.Next.After(time.Now()) {
						next = "due"
					}
				}
				if s.LastRun != nil {
					lastAt = s.LastRun.Started.Local().Format("2006-01-02 15:04")
					status = string(s.LastRun.Status)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, strings.Join(s.Paths, ", "), sched, next, lastAt, status)
			}
			return tw.Flush()
		},
	}
}

func newSourceShowCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show a source's settings and last run",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			cat, err := g.openCatalog(ctx, false)
			if err != nil {
				return err
			}
			if cat == nil {
				return fmt.Errorf("source %s: %w", args[0], catalog.ErrNotFound)
			}
			defer cat.Close()
			s, err := cat.Source(ctx, args[0])
			if err != nil {
				return err
			}
			last, err := cat.LastRun(ctx, s.Name)
			if err != nil {
				return err
			}
			j := toSourceJSON(s, last)
			if g.JSON {
				return g.printJSON(j)
			}
			tw := g.table()
			row := func(k, v string) {
				if v != "" {
					fmt.Fprintf(tw, "%s:\t%s\n", k, v)
				}
			}
			row("name", s.Name)
			row("paths", strings.Join(s.Paths, ", "))
			row("excludes", strings.Join(s.Excludes, ", "))
			sched := "on demand (cairn run " + s.Name + ")"
			if s.Schedule != "" {
				sched = s.Schedule
			}
			row("schedule", sched)
			if j.Next != nil {
				row("next run", j.Next.Local().Format("2006-01-02 15:04 MST"))
			}
			row("pre hook", s.PreHook)
			row("post hook", s.PostHook)
			row("retention", s.Retention.String())
			row("redundancy", s.Redundancy)
			row("window", s.Window)
			if s.LimitUp > 0 {
				row("limit up", schedule.FormatRate(s.LimitUp))
			}
			if s.LimitDown > 0 {
				row("limit down", schedule.FormatRate(s.LimitDown))
			}
			row("created", s.Created.Local().Format("2006-01-02 15:04:05"))
			if last != nil {
				row("last run", fmt.Sprintf("#%d %s %s, %s", last.ID, last.Kind, last.Status, last.Started.Local().Format("2006-01-02 15:04:05")))
			} else {
				row("last run", "never")
			}
			return tw.Flush()
		},
	}
}
