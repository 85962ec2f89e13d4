package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/daemon"
)

func newIDCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "id",
		Short: "Show this node's ID, its owner and its addresses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, _ *daemon.Daemon) error {
				id, err := c.ID(ctx)
				if err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(id)
				}
				g.printf("node ID:  %s\n", id.NodeID)
				if id.OwnerID != "" {
					g.printf("owner ID: %s\n", id.OwnerID)
				} else {
					g.printf("owner ID: (none yet: set up a repository with cairn init)\n")
				}
				g.printf("addresses:\n")
				for _, a := range id.Addrs {
					g.printf("  %s\n", a)
				}
				return nil
			})
		},
	}
}
