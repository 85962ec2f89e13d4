package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/daemon"
)

type offerOptions struct {
	community bool
	peer      string
}

func newOfferCmd(g *Globals) *cobra.Command {
	var o offerOptions
	cmd := &cobra.Command{
		Use:   "offer [SIZE]",
		Short: "Show or set the disk space shared with peers",
		Long: `Show or set the disk space this node shares with peers.

SIZE is a size (50GB, 800MiB) or a share of the free disk (10%). Without
SIZE, the current offer is shown. --community opts in to keeping data of
peers that are not friends, under the reciprocity rule (--community=false
turns it off). With --peer ID, SIZE is that friend's own quota (0 removes it).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.OfferRequest{}
			if len(args) == 1 {
				req.Size = args[0]
			}
			if cmd.Flags().Changed("community") {
				req.Community = &o.community
			}
			if o.peer != "" && req.Size == "" {
				return errors.Join(ErrUsage, errors.New("--peer needs a SIZE"))
			}
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, _ *daemon.Daemon) error {
				var off api.Offer
				var err error
				switch {
				case o.peer != "":
					id, rerr := resolvePeer(ctx, c, o.peer)
					if rerr != nil {
						return rerr
					}
					if _, err = c.SetOffer(ctx, api.OfferRequest{Size: req.Size, NodeID: id}); err != nil {
						return err
					}
					if g.JSON {
						return g.printJSON(map[string]any{"node_id": id, "quota": req.Size})
					}
					g.printf("quota for %s: %s\n", id, req.Size)
					return nil
				case req.Size != "" || req.Community != nil:
					off, err = c.SetOffer(ctx, req)
				default:
					off, err = c.Offer(ctx)
				}
				if err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(off)
				}
				g.printf("offered: %s (free disk %s)\n", humanBytes(off.OfferBytes), humanBytes(off.FreeBytes))
				if off.OfferPercent > 0 {
					g.printf("         %.4g%% of the free disk\n", off.OfferPercent)
				}
				if off.Community {
					g.printf("community mode: on (peers that are not friends may store under the reciprocity rule)\n")
				} else {
					g.printf("community mode: off (friends only)\n")
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&o.community, "community", false, "accept data of peers that are not friends, under the reciprocity rule")
	cmd.Flags().StringVar(&o.peer, "peer", "", "set this friend's own quota (node ID or name)")
	return cmd
}
