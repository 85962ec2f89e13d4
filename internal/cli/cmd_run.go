package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/daemon"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/runner"
	"github.com/cairn-backup/cairn/internal/schedule"
)

func newRunCmd(g *Globals) *cobra.Command {
	var full bool
	c := &cobra.Command{
		Use:   "run NAME",
		Short: "Back up a source now",
		Long: `Back up a source now: its pre hook, the backup, its post hook, then its
retention. The first run of a source is full; later runs skip files whose size,
times and inode did not change, unless --full. A run that was interrupted is
resumed. Every new, changed or failed file is recorded: see cairn history.
Files that cannot be read are recorded and the rest is saved: exit code 3.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), g, args[0], full)
		},
	}
	c.Flags().BoolVar(&full, "full", false, "re-read and re-hash every file")
	return c
}

func runRun(ctx context.Context, g *Globals, name string, full bool) error {
	cat, err := g.openCatalog(ctx, true)
	if err != nil {
		return err
	}
	defer cat.Close()
	src, err := cat.Source(ctx, name)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return fmt.Errorf("no source called %s (see cairn source list)", name)
		}
		return err
	}
	r, err := g.openOrCreateRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	rn := &runner.Runner{
		Catalog: cat, Repo: r,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if !g.Quiet && !g.JSON {
		rn.HookOutput = g.Stderr
	}
	var opts runner.Options
	opts.Full = full
	var line *statusLine
	if !g.Quiet && !g.JSON && g.stderrIsTerminal() {
		line = &statusLine{w: g.Stderr}
		opts.OnProgress = func(p backup.Progress) { line.set(progressText(p)) }
	}
	run, runErr := rn.Run(ctx, name, opts)
	if line != nil {
		line.clear()
	}
	if run == nil {
		if errors.Is(runErr, catalog.ErrRunning) {
			return fmt.Errorf("source %s is being backed up by another process; wait for it or see cairn history %s", name, name)
		}
		return runErr
	}
	// The snapshot is safe locally; placing it on peers may fall short
	// (hosts offline), which the daemon completes later.
	var placed *placement.Summary
	if w, werr := schedule.ParseWindow(src.Window); run.SnapshotID != "" && werr == nil && !w.Open(time.Now(), time.Local) {
		g.say("placement on peers waits: the source's window %s is closed (the daemon places it later)\n", src.Window)
	} else if run.SnapshotID != "" {
		var perr error
		if placed, perr = g.placeOnPeers(ctx, r, src.Redundancy, src.LimitUp); perr != nil {
			fmt.Fprintf(g.Stderr, "warning: %v (the daemon retries)\n", perr)
		}
	}
	if g.JSON {
		if err := g.printJSON(run); err != nil {
			return err
		}
	} else {
		printRunSummary(g, run)
		if placed != nil {
			g.printf("  %s\n", placementText(placed))
		}
		if run.Failed > 0 {
			n := 0
			_ = cat.RunFiles(ctx, run.ID, catalog.FileFilter{FailedOnly: true}, func(f catalog.RunFile) error {
				if n++; n > 20 {
					return errStop
				}
				fmt.Fprintf(g.Stderr, "warning: %s: %s\n", f.Path, f.Message)
				return nil
			})
			if n > 20 {
				fmt.Fprintf(g.Stderr, "warning: and %d more: cairn history %d --files --failed\n", run.Failed-20, run.ID)
			}
		}
	}
	if errors.Is(runErr, runner.ErrPartial) {
		return fmt.Errorf("run %d of %s: %d files could not be read: %w", run.ID, name, run.Failed, ErrPartial)
	}
	return runErr
}

var errStop = errors.New("stop")

func printRunSummary(g *Globals, run *catalog.Run) {
	g.printf("run %d of %s: %s (%s", run.ID, run.Source, run.Status, run.Kind)
	if run.ResumedFrom != 0 {
		g.printf(", resumes run %d", run.ResumedFrom)
	}
	g.printf(")")
	if len(run.SnapshotID) >= 8 {
		g.printf(", snapshot %s", run.SnapshotID[:8])
	}
	g.printf("\n  files: %d new, %d changed, %d unchanged", run.New, run.Changed, run.Unchanged)
	if run.Failed > 0 {
		g.printf(", %d failed", run.Failed)
	}
	g.printf("\n  dirs: %d, links: %d; data: %s processed, %s new\n", run.Dirs, run.Links, humanBytes(run.Bytes), humanBytes(run.BytesAdded))
	if run.Error != "" {
		g.printf("  note: %s\n", run.Error)
	}
}

// enableScheduler adds the scheduler to the node's daemon: it runs the
// catalog's sources on their schedules, resumes interrupted runs, and never
// runs one source twice at once. Each run opens the repository afresh, with
// the passphrase from --password-file, CAIRN_PASSWORD_FILE or
// CAIRN_PASSWORD (a daemon never prompts); without one, scheduled runs are
// recorded as failing to open the repository and the rest of the daemon
// goes on. Call it from runDaemon, not for the short-lived nodes of
// withNode.
func (g *Globals) enableScheduler(d *daemon.Daemon, log *slog.Logger) {
	d.AddService("scheduler", func(ctx context.Context) error {
		h := d.Home()
		if err := h.Ensure(); err != nil {
			return err
		}
		cat, err := catalog.Open(ctx, h.CatalogPath(), catalog.Options{})
		if err != nil {
			return err
		}
		defer cat.Close()
		if g.PasswordFile == "" && g.Getenv("CAIRN_PASSWORD_FILE") == "" && g.Getenv("CAIRN_PASSWORD") == "" {
			if srcs, err := cat.Sources(ctx); err == nil {
				for _, src := range srcs {
					if src.Schedule != "" {
						// Say so at once rather than at the first due run.
						log.Warn("scheduled sources will not run", "source", src.Name, "err", errNoDaemonPassphrase)
						break
					}
				}
			}
		}
		entries := &runner.Runner{Catalog: cat, Logger: log}
		s, err := schedule.New(schedule.Config{
			Sources: entries.Entries,
			Run: func(ctx context.Context, name string) error {
				return g.scheduledRun(ctx, cat, name, log)
			},
			Logger: log,
		})
		if err != nil {
			return err
		}
		return s.Run(ctx)
	})
}

// errNoDaemonPassphrase is why a scheduled run cannot open the repository.
var errNoDaemonPassphrase = errors.New("scheduled runs need the repository passphrase: start the daemon with --password-file or CAIRN_PASSWORD_FILE")

// scheduledRun runs one source for the scheduler. A partial run is done
// (its failures are in the catalog); a source already running in another
// process waits for its next slot.
func (g *Globals) scheduledRun(ctx context.Context, cat *catalog.Catalog, name string, log *slog.Logger) error {
	if g.PasswordFile == "" && g.Getenv("CAIRN_PASSWORD_FILE") == "" && g.Getenv("CAIRN_PASSWORD") == "" {
		return errNoDaemonPassphrase
	}
	r, err := g.openRepo(ctx)
	if err != nil {
		return fmt.Errorf("run %s: %w", name, err)
	}
	defer r.Close()
	src, err := cat.Source(ctx, name)
	if err != nil {
		return err
	}
	rn := &runner.Runner{Catalog: cat, Repo: r, Logger: log}
	run, err := rn.Run(ctx, name, runner.Options{})
	if run != nil && run.SnapshotID != "" {
		if _, perr := g.placeOnPeers(ctx, r, src.Redundancy, src.LimitUp); perr != nil {
			log.Warn("place on peers after a scheduled run", "source", name, "err", perr)
		}
	}
	if errors.Is(err, runner.ErrPartial) || errors.Is(err, catalog.ErrRunning) {
		return nil
	}
	return err
}
