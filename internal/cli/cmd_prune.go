package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/prune"
	"github.com/cairn-backup/cairn/internal/repo"
)

type pruneOptions struct {
	maxUnused string
	dryRun    bool
}

func (o *pruneOptions) addFlags(c *cobra.Command) {
	c.Flags().StringVar(&o.maxUnused, "max-unused", "0%", "repack a pack once more than `PCT` of it is unused")
}

func (o *pruneOptions) options(g *Globals) (prune.Options, error) {
	var po prune.Options
	if o.maxUnused != "" && o.maxUnused != "0" && o.maxUnused != "0%" {
		f, err := parsePercent(o.maxUnused)
		if err != nil {
			return po, err
		}
		po.MaxUnused = f * 100
	}
	po.DryRun = o.dryRun
	if !g.Quiet && !g.JSON && g.stderrIsTerminal() {
		line := &statusLine{w: g.Stderr}
		po.Progress = func(step string) { line.set(step + "...") }
	}
	return po, nil
}

func newPruneCmd(g *Globals) *cobra.Command {
	var o pruneOptions
	c := &cobra.Command{
		Use:   "prune",
		Short: "Remove data no snapshot needs",
		Long: `Remove data no snapshot needs: packs nothing uses are deleted, packs partly
used are repacked, and packs and temporary files left by interrupted
backups are removed. Runs under the exclusive lock. Safe to interrupt: a
crash leaves every snapshot intact and running prune again finishes the job.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPrune(cmd.Context(), g, o)
		},
	}
	o.addFlags(c)
	c.Flags().BoolVarP(&o.dryRun, "dry-run", "n", false, "only say what would be removed")
	return c
}

func runPrune(ctx context.Context, g *Globals, o pruneOptions) error {
	po, err := o.options(g)
	if err != nil {
		return err
	}
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.LockExclusive(ctx)
	if err != nil {
		return err
	}
	defer lock.Unlock(ctx)
	st, err := runPruneLocked(ctx, g, r, po)
	if err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(st)
	}
	printPruneStats(g, st)
	return nil
}

func runPruneLocked(ctx context.Context, g *Globals, r *repo.Repository, po prune.Options) (*prune.Stats, error) {
	st, err := prune.RunLocked(ctx, r, po)
	if po.Progress != nil {
		fmt.Fprintf(g.Stderr, "\r\033[K")
	}
	if err != nil {
		return nil, err // prune's errors say "prune: ..." already
	}
	if !po.DryRun {
		// What prune deleted locally goes from the hosts too.
		if err := g.reconcilePeers(ctx, r); err != nil {
			fmt.Fprintf(g.Stderr, "warning: delete on peers: %v (the next prune retries)\n", err)
		}
	}
	return st, nil
}

func printPruneStats(g *Globals, st *prune.Stats) {
	verb := "removed"
	if st.DryRun {
		verb = "would remove"
	}
	g.printf("%d snapshots use %d blobs in %d packs\n", st.Snapshots, st.UsedBlobs, st.PacksKept+st.PacksRepacked)
	g.printf("%s %d unused packs, %d packs left by interrupted runs; repacked %d packs (%d blobs, %s) into %d\n",
		verb, st.PacksDeleted, st.PacksUnindexed, st.PacksRepacked, st.BlobsRepacked, humanBytes(st.BytesRepacked), st.PacksWritten)
	g.printf("%s %d blobs, freeing %s\n", verb, st.BlobsRemoved, humanBytes(st.BytesFreed))
	if st.TempFiles > 0 {
		g.printf("removed %d temporary files\n", st.TempFiles)
	}
}
