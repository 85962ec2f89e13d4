package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/gologshim"
	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/daemon"
	"github.com/cairn-backup/cairn/internal/p2p"
)

type daemonOptions struct {
	listen       []string
	apiAddr      string
	noMDNS       bool
	noNATPortMap bool
	noRelay      bool
	verbose      bool
}

func newDaemonCmd(g *Globals) *cobra.Command {
	var o daemonOptions
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run this node in the foreground: peer network and local API",
		Long: `Run this node in the foreground until interrupted (Ctrl-C, SIGTERM).

The node joins the peer network (LAN discovery, friends, DHT, NAT traversal)
and serves the local HTTP JSON API on 127.0.0.1, guarded by the API key in
the home. Other cairn commands find the daemon through the home.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDaemon(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.listen, "listen", nil, "multiaddr to listen on (repeatable; default: the home's settings, else TCP and QUIC on port 4521)")
	f.StringVar(&o.apiAddr, "api", "127.0.0.1:0", "address of the local API (loopback only)")
	f.BoolVar(&o.noMDNS, "no-mdns", false, "do not discover peers on the LAN")
	f.BoolVar(&o.noNATPortMap, "no-nat-port-map", false, "do not map a port on the router (UPnP, NAT-PMP)")
	f.BoolVar(&o.noRelay, "no-relay", false, "do not use or offer relays, no hole punching")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "log debug messages")
	return cmd
}

func runDaemon(ctx context.Context, g *Globals, o daemonOptions) error {
	h, err := g.home()
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if o.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
	// go-libp2p's own logs: warnings and errors only, unless --verbose.
	libLevel := slog.LevelWarn
	if o.verbose {
		libLevel = slog.LevelDebug
	}
	gologshim.SetDefaultHandler(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: libLevel}))
	d := daemon.New(daemon.Config{
		Node: p2p.Config{
			Home: h, Listen: o.listen, NoMDNS: o.noMDNS, NoNATPortMap: o.noNATPortMap, NoRelay: o.noRelay,
		},
		APIAddr: o.apiAddr,
		Logger:  log,
	})
	for _, extend := range daemonExtensions {
		extend(d)
	}
	// Only the long-running daemon runs scheduled sources, not the
	// short-lived nodes of other commands.
	g.enableScheduler(d, log)
	if err := d.Start(ctx); err != nil {
		if errors.Is(err, daemon.ErrAlreadyRunning) {
			return fmt.Errorf("%w: stop it first, or use another --home", err)
		}
		return err
	}
	id := d.ID()
	if g.JSON {
		_ = g.printJSON(map[string]any{"api": d.Addr(), "node_id": id.NodeID, "addrs": id.Addrs})
	} else {
		g.printf("cairn daemon: node %s, API on %s\n", id.NodeID, d.Addr())
	}
	return d.Run(ctx)
}

// daemonExtensions configure a daemon before it starts (hosting, the
// scheduler, the web UI): each adds handlers, hooks and services.
var daemonExtensions = []func(*daemon.Daemon){
	func(d *daemon.Daemon) {
		hosted := daemon.EnableHosting(d)
		daemon.EnablePlacement(d, hosted)
	},
}

// withNode runs fn against the home's running daemon, or, when none runs,
// against a short-lived node started for this command (d is then that
// node, else nil).
func (g *Globals) withNode(ctx context.Context, fn func(ctx context.Context, c *api.Client, d *daemon.Daemon) error) error {
	h, err := g.home()
	if err != nil {
		return err
	}
	c, err := api.FromHome(ctx, h)
	if err == nil {
		return fn(ctx, c, nil)
	}
	if !errors.Is(err, api.ErrNoDaemon) {
		return err
	}
	var handler slog.Handler = slog.DiscardHandler
	if g.Getenv("CAIRN_DEBUG") != "" {
		handler = slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	log := slog.New(handler)
	gologshim.SetDefaultHandler(handler) // a short-lived node's libp2p logs too
	d := daemon.New(daemon.Config{Node: p2p.Config{Home: h}, Ephemeral: true, Logger: log})
	for _, extend := range daemonExtensions {
		extend(d)
	}
	if err := d.Start(ctx); err != nil {
		return err
	}
	defer d.Close()
	return fn(ctx, d.Client(), d)
}
