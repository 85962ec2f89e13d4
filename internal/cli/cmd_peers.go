package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/daemon"
)

func newPeersCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List peers; pair with friends (invite, join), add, remove, block, name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, d *daemon.Daemon) error {
				if d != nil {
					// A node started just now: give friends a moment to connect.
					d.Node().WaitFriends(ctx, 3*time.Second)
				}
				peers, err := c.Peers(ctx)
				if err != nil {
					return err
				}
				return g.printPeers(peers)
			})
		},
	}
	cmd.AddCommand(newPeersInviteCmd(g), newPeersJoinCmd(g), newPeersAddCmd(g),
		newPeersOpCmd(g, "remove", "Forget a peer", (*api.Client).Remove),
		newPeersOpCmd(g, "block", "Block a peer: no connection, no data, either way", (*api.Client).Block),
		newPeersNameCmd(g))
	return cmd
}

func (g *Globals) printPeers(peers []api.Peer) error {
	if g.JSON {
		return g.printJSON(peers)
	}
	if len(peers) == 0 {
		g.printf("no peers yet: pair with a friend with cairn peers invite / cairn peers join\n")
		return nil
	}
	if g.Quiet {
		return nil
	}
	w := g.table()
	fmt.Fprintln(w, "NAME\tNODE\tTRUST\tONLINE\tLAN\tRTT\tOFFER\tHELD FOR THEM\tHELD BY THEM\tLAST SEEN")
	for _, p := range peers {
		online, lan, rtt, seen := "no", "", "", "never"
		if p.Connected {
			online = "yes"
		}
		if p.LAN {
			lan = "lan"
		}
		if p.RTTMillis > 0 {
			rtt = fmt.Sprintf("%.1f ms", p.RTTMillis)
		}
		if !p.LastSeen.IsZero() {
			seen = humanDuration(time.Since(p.LastSeen)) + " ago"
		}
		trust := p.Trust
		if trust == "" {
			trust = "-"
		}
		name := p.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, shortNode(p.NodeID), trust, online, lan, rtt,
			humanBytes(p.OfferBytes), humanBytes(p.HeldForThem), humanBytes(p.HeldByThem), seen)
	}
	return w.Flush()
}

func shortNode(id string) string {
	if len(id) > 16 {
		return id[:6] + "…" + id[len(id)-6:]
	}
	return id
}

func newPeersInviteCmd(g *Globals) *cobra.Command {
	var ttl time.Duration
	var short bool
	cmd := &cobra.Command{
		Use:   "invite",
		Short: "Print a one-time invite code for a friend to join with",
		Long: `Print a one-time invite code; the other side runs: cairn peers join CODE.
The code is the last line of the output. It works once, until it expires.
Without a running daemon, the command keeps a node up until the code is used
or expires. With --short, the code is about 40 characters but holds no
addresses: the joiner must find this node on its LAN or through friends.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, d *daemon.Daemon) error {
				inv, err := c.Invite(ctx, ttl, short)
				if err != nil {
					return err
				}
				if g.JSON {
					if err := g.printJSON(inv); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(g.Stdout, "On the other machine run: cairn peers join CODE\nThe code works once, until %s.\n%s\n",
						inv.Expires.Local().Format("15:04:05"), inv.Code)
				}
				if d == nil {
					return nil
				}
				// A short-lived node: stay up until the code is used.
				fmt.Fprintln(g.Stderr, "cairn: waiting for the other side to join (Ctrl-C to stop)")
				id, err := d.Node().WaitInvite(ctx, inv.Code)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.Stderr, "cairn: paired with %s\n", id)
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "expires", 15*time.Minute, "how long the code stays valid (at most 24h)")
	cmd.Flags().BoolVar(&short, "short", false, "a short code without addresses, for a joiner on the same LAN or with friends in common")
	return cmd
}

func newPeersJoinCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "join CODE",
		Short: "Pair with the node that printed an invite code",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code := strings.Join(args, "")
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, _ *daemon.Daemon) error {
				p, err := c.Join(ctx, code)
				if err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(p)
				}
				g.printf("paired with %s (%s)\n", p.NodeID, nonEmpty(p.Name, "no name"))
				return nil
			})
		},
	}
}

func newPeersAddCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "add MULTIADDR",
		Short: "Add a friend by its full address (ending in /p2p/NODE_ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, _ *daemon.Daemon) error {
				p, err := c.Add(ctx, args[0])
				if err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(p)
				}
				state := "not reachable now; will retry"
				if p.Connected {
					state = "connected"
				}
				g.printf("added %s as a friend (%s)\n", p.NodeID, state)
				return nil
			})
		},
	}
}

func newPeersOpCmd(g *Globals, verb, short string, op func(*api.Client, context.Context, string) error) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short + " (by node ID, name, or a unique start of the node ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, _ *daemon.Daemon) error {
				id, err := resolvePeer(ctx, c, args[0])
				if err != nil {
					if verb != "block" {
						return err
					}
					id = args[0] // blocking a peer not met yet
				}
				if err := op(c, ctx, id); err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(map[string]string{"node_id": id, "done": verb})
				}
				g.printf("%s: %s\n", verb, id)
				return nil
			})
		},
	}
}

func newPeersNameCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "name ID NAME",
		Short: "Give a peer a name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withNode(cmd.Context(), func(ctx context.Context, c *api.Client, _ *daemon.Daemon) error {
				id, err := resolvePeer(ctx, c, args[0])
				if err != nil {
					return err
				}
				if err := c.Name(ctx, id, args[1]); err != nil {
					return err
				}
				if g.JSON {
					return g.printJSON(map[string]string{"node_id": id, "name": args[1]})
				}
				g.printf("%s is now %q\n", id, args[1])
				return nil
			})
		},
	}
}

var errNoSuchPeer = errors.New("no such peer")

// resolvePeer turns a node ID, a peer's name or a unique start of a node
// ID into a node ID from the peer table.
func resolvePeer(ctx context.Context, c *api.Client, arg string) (string, error) {
	peers, err := c.Peers(ctx)
	if err != nil {
		return "", err
	}
	var byName, byPrefix []string
	for _, p := range peers {
		if p.NodeID == arg {
			return arg, nil
		}
		if p.Name == arg {
			byName = append(byName, p.NodeID)
		}
		if len(arg) >= 6 && strings.HasPrefix(p.NodeID, arg) {
			byPrefix = append(byPrefix, p.NodeID)
		}
	}
	switch {
	case len(byName) == 1:
		return byName[0], nil
	case len(byName) > 1:
		return "", fmt.Errorf("%w: %d peers are named %q; use the node ID", ErrUsage, len(byName), arg)
	case len(byPrefix) == 1:
		return byPrefix[0], nil
	case len(byPrefix) > 1:
		return "", fmt.Errorf("%w: %q matches %d peers; give more of the node ID", ErrUsage, arg, len(byPrefix))
	}
	return "", fmt.Errorf("%w %q: see cairn peers", errNoSuchPeer, arg)
}

func nonEmpty(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}
