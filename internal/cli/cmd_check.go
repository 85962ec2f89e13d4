package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/check"
	"github.com/cairn-backup/cairn/internal/repo"
)

type checkOptions struct {
	readData bool
	subset   string
}

func newCheckCmd(g *Globals) *cobra.Command {
	var o checkOptions
	c := &cobra.Command{
		Use:   "check",
		Short: "Verify the repository's structure, and with --read-data every byte",
		Long: `Verify the repository: key files, indexes, that every indexed pack exists
with the indexed size, that every snapshot decrypts and carries the owner's
signature, and that every tree of every snapshot decodes and only names
indexed blobs. With --read-data, also read every pack and verify every byte:
the pack's SHA-256, its header, and every blob's authentication and ID.

Every damaged object is named with the snapshots it affects, and the command
exits with code 17. Packs that no index knows about are left by interrupted
backups; they are reported as warnings and removed by cairn prune.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCheck(cmd.Context(), g, o)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.readData, "read-data", false, "read and verify every byte of every pack")
	f.StringVar(&o.subset, "read-data-subset", "", "read and verify only `N%` of the packs, chosen at random")
	return c
}

// parsePercent parses "10%" or "10" into a fraction.
func parsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v <= 0 || v > 100 {
		return 0, errors.Join(ErrUsage, fmt.Errorf("%q is not a percentage between 0 and 100", s))
	}
	return v / 100, nil
}

func runCheck(ctx context.Context, g *Globals, o checkOptions) error {
	opts := check.Options{ReadData: o.readData}
	if o.subset != "" {
		f, err := parsePercent(o.subset)
		if err != nil {
			return err
		}
		opts.ReadDataSubset = f
	}
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	// A shared lock: backups may go on, prune must wait.
	lock, err := r.LockShared(ctx)
	switch {
	case errors.Is(err, repo.ErrLocked):
		return err
	case err != nil:
		// A full disk or a read-only medium must not stop a check, which
		// only reads.
		fmt.Fprintf(g.Stderr, "warning: checking without a lock: %v\n", err)
	default:
		defer lock.Unlock(ctx)
	}

	var line *statusLine
	if !g.Quiet && !g.JSON && g.stderrIsTerminal() {
		line = &statusLine{w: g.Stderr}
		var last time.Time
		opts.Progress = func(p check.Progress) {
			now := time.Now()
			if now.Sub(last) < 100*time.Millisecond && p.Done != p.Total {
				return
			}
			last = now
			if p.Total > 0 {
				line.set(fmt.Sprintf("%s: %d of %d", p.Phase, p.Done, p.Total))
			} else {
				line.set(fmt.Sprintf("%s: %d", p.Phase, p.Done))
			}
		}
	}
	res, err := check.Run(ctx, r, opts)
	if line != nil {
		line.clear()
	}
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if g.JSON {
		if err := g.printJSON(res); err != nil {
			return err
		}
		return res.Err()
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(g.Stderr, "warning: %s\n", w)
	}
	for _, e := range res.Errors {
		fmt.Fprintf(g.Stderr, "error: %s\n", e)
	}
	s := res.Stats
	g.printf("checked %d snapshots, %d trees, %d data blobs, %d packs, %d indexes, %d key files\n",
		s.Snapshots, s.Trees, s.DataBlobs, s.Packs, s.Indexes, s.Keys)
	if opts.ReadData {
		g.printf("read %d packs (%s)\n", s.PacksRead, humanBytes(s.BytesRead))
	}
	if res.OK() {
		g.printf("no errors found\n")
	}
	return res.Err()
}
