package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
)

type backupOptions struct {
	excludes   []string
	tags       []string
	host       string
	full       bool
	parent     string
	noCacheTag bool
	redundancy string
	noLocal    bool
}

func newBackupCmd(g *Globals) *cobra.Command {
	var o backupOptions
	c := &cobra.Command{
		Use:   "backup PATH...",
		Short: "Back up files and folders into a new snapshot",
		Long: `Back up the given paths into a new snapshot, stored with their absolute paths.

On a machine where nothing is set up yet, the home and its repository are
created first (the passphrase is asked for on the terminal, or taken from
CAIRN_PASSWORD). Unchanged files, by size, times and inode, are not read again.
Files that cannot be read are listed and the rest is saved: exit code 3.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBackup(cmd.Context(), g, o, args)
		},
	}
	f := c.Flags()
	f.StringArrayVarP(&o.excludes, "exclude", "e", nil, "leave out paths matching `PATTERN` (a name, or a path with ** for any folders)")
	f.StringArrayVar(&o.tags, "tag", nil, "add a `TAG` to the snapshot")
	f.StringVar(&o.host, "host", "", "host name to record (default: this machine's)")
	f.BoolVar(&o.full, "full", false, "read every file again instead of trusting unchanged metadata")
	f.StringVar(&o.parent, "parent", "", "compare against this snapshot instead of the latest of the same paths")
	f.BoolVar(&o.noCacheTag, "no-exclude-caches", false, "back up folders marked with CACHEDIR.TAG too")
	f.BoolVar(&o.noLocal, "no-local", false, "keep no local copy of data packs once they are fully placed on peers (for a machine short of disk)")
	f.StringVar(&o.redundancy, "redundancy", "", "on peers: `N` copies on N nodes, or K+M Reed-Solomon shards (default: from the number of friends)")
	return c
}

// cliReporter collects failures for the final report.
type cliReporter struct {
	mu     sync.Mutex
	failed []backup.FileResult
}

func (r *cliReporter) File(f backup.FileResult) {
	if f.Status == backup.StatusFailed || f.Err != nil {
		r.mu.Lock()
		r.failed = append(r.failed, f)
		r.mu.Unlock()
	}
}
func (r *cliReporter) Checkpoint() {}

type backupJSON struct {
	backup.Summary
	Errors    []fileError        `json:"errors,omitempty"`
	Placement *placement.Summary `json:"placement,omitempty"`
}

type fileError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

func runBackup(ctx context.Context, g *Globals, o backupOptions, paths []string) error {
	r, err := g.openOrCreateRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	rep := &cliReporter{}
	opts := backup.Options{
		Paths: paths, Excludes: o.excludes, ExcludeCaches: !o.noCacheTag, Tags: o.tags,
		Host: o.host, Full: o.full, Parent: o.parent, Reporter: rep,
	}
	var line *statusLine
	if !g.Quiet && !g.JSON && g.stderrIsTerminal() {
		line = &statusLine{w: g.Stderr}
		opts.OnProgress = func(p backup.Progress) { line.set(progressText(p)) }
	}
	sum, err := backup.Run(ctx, r, opts)
	for _, name := range r.DamagedIndexes() {
		fmt.Fprintf(g.Stderr, "warning: index %s is damaged and was skipped (its data is stored again; see cairn check)\n", name[:min(8, len(name))])
	}
	if line != nil {
		line.clear()
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	// The snapshot is safe locally; placing it on peers may fall short
	// (hosts offline), which the daemon completes later.
	placed, perr := g.placeOnPeers(ctx, r, o.redundancy, 0)
	if perr != nil {
		fmt.Fprintf(g.Stderr, "warning: %v (the daemon retries)\n", perr)
	}
	if o.noLocal {
		if placed == nil {
			fmt.Fprintf(g.Stderr, "warning: --no-local: no peers to place on, the local copy stays\n")
		} else if h, err := g.home(); err == nil {
			n, size, err := dropPlacedPacks(ctx, h)
			if err != nil {
				fmt.Fprintf(g.Stderr, "warning: --no-local: %v\n", err)
			} else {
				g.printf("  --no-local: %d packs (%s) now live on peers only\n", n, humanBytes(size))
			}
		}
	}
	var errs []fileError
	for _, f := range rep.failed {
		msg := "failed"
		if f.Err != nil {
			msg = f.Err.Error()
		}
		errs = append(errs, fileError{Path: f.Path, Message: msg})
	}
	if g.JSON {
		if err := g.printJSON(backupJSON{Summary: *sum, Errors: errs, Placement: placed}); err != nil {
			return err
		}
	} else {
		for _, e := range errs {
			fmt.Fprintf(g.Stderr, "warning: %s\n", e.Message)
		}
		g.printf("snapshot %s saved\n", sum.SnapshotID[:8])
		g.printf("  files: %d new, %d changed, %d unchanged", sum.New, sum.Changed, sum.Unchanged)
		if sum.Failed > 0 {
			g.printf(", %d failed", sum.Failed)
		}
		g.printf("\n  dirs: %d, links: %d\n", sum.Dirs, sum.Links)
		g.printf("  data: %s processed, %s new, %s stored after compression, in %s\n",
			humanBytes(sum.Bytes), humanBytes(sum.BytesAdded), humanBytes(sum.StoredAdded), humanDuration(time.Duration(sum.DurationMS)*time.Millisecond))
		if placed != nil {
			g.printf("  %s\n", placementText(placed))
		}
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d files could not be read: %w", sum.Failed, ErrPartial)
	}
	return nil
}

func progressText(p backup.Progress) string {
	rate := float64(0)
	if s := p.Elapsed.Seconds(); s > 0 {
		rate = float64(p.Bytes) / s
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "[%s] %d files, %s", humanDuration(p.Elapsed), p.Files, humanBytes(p.Bytes))
	if p.TotalBytes > 0 {
		pct := 100 * float64(p.Bytes) / float64(p.TotalBytes)
		if pct > 100 {
			pct = 100
		}
		fmt.Fprintf(&sb, " of %s (%.0f%%)", humanBytes(p.TotalBytes), pct)
	}
	fmt.Fprintf(&sb, ", %s/s", humanBytes(int64(rate)))
	if p.ScanDone && rate > 0 && p.TotalBytes > p.Bytes {
		eta := time.Duration(float64(p.TotalBytes-p.Bytes)/rate) * time.Second
		fmt.Fprintf(&sb, ", ETA %s", humanDuration(eta))
	}
	if p.Errors > 0 {
		fmt.Fprintf(&sb, ", %d errors", p.Errors)
	}
	return sb.String()
}

// openOrCreateRepo opens the repository; when it is the home's own and
// does not exist yet, it creates the home and the repository first, so the
// first backup on a new machine needs no setup.
func (g *Globals) openOrCreateRepo(ctx context.Context) (*repo.Repository, error) {
	r, err := g.openRepo(ctx)
	if err == nil || !errors.Is(err, repo.ErrNoRepository) {
		return r, err
	}
	_, inHome, derr := g.repoDir()
	if derr != nil || !inHome {
		return nil, err
	}
	return runInit(ctx, g, false)
}
