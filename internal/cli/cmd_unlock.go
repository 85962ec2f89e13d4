package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

func newUnlockCmd(g *Globals) *cobra.Command {
	var all bool
	c := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks",
		Long: `Remove locks whose holders are gone: locks not refreshed for half an hour,
and locks taken on this machine by processes that no longer run. With
--remove-all, remove every lock: only do that when you know no other cairn
process uses the repository.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUnlock(cmd.Context(), g, all)
		},
	}
	c.Flags().BoolVar(&all, "remove-all", false, "remove every lock, live ones too")
	return c
}

func runUnlock(ctx context.Context, g *Globals, all bool) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	n, err := r.RemoveStaleLocks(ctx, all)
	if err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	if g.JSON {
		return g.printJSON(map[string]int{"removed": n})
	}
	g.printf("%d locks removed\n", n)
	return nil
}
