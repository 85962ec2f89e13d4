package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newRepairCmd(g *Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "repair",
		Short: "Repair a damaged repository",
	}
	var all bool
	idx := &cobra.Command{
		Use:   "index",
		Short: "Rebuild the index from the packs' own headers",
		Long: `Read the encrypted header of every pack that no readable index covers
(every pack with --all) and write an index for them. Use it when check
reports a damaged index, or packs that no index knows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runRepairIndex(cmd.Context(), g, all) },
	}
	idx.Flags().BoolVar(&all, "all", false, "rebuild from every pack and replace all index files")
	c.AddCommand(idx)
	return c
}

func runRepairIndex(ctx context.Context, g *Globals, all bool) error {
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
	rep, err := r.RebuildIndex(ctx, all)
	if err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(rep)
	}
	g.printf("read %d pack headers, indexed %d blobs", rep.PacksRead, rep.BlobsIndexed)
	if len(rep.Removed) > 0 {
		g.printf(", replaced %d index files", len(rep.Removed))
	}
	g.printf("\n")
	for _, p := range rep.Damaged {
		fmt.Fprintf(g.Stderr, "warning: pack %s has a damaged header and was left out\n", p[:8])
	}
	return nil
}
