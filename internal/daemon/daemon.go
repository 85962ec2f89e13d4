// Package daemon wires a cairn node together: the p2p node, the HTTP JSON
// API on 127.0.0.1 behind the home's API key, and background services.
//
// Other subsystems plug in before Start: HTTP handlers (Handle), code that
// needs the started node such as protocol handlers (OnStart), long-running
// services (AddService) and the hosting ledger (SetLedger).
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Config configures a daemon.
type Config struct {
	// Node configures the p2p node; Node.Home is the daemon's home.
	Node p2p.Config
	// APIAddr is where the API listens: a 127.0.0.1 host:port; default a
	// random free port on 127.0.0.1.
	APIAddr string
	// Ephemeral marks a short-lived node run by a CLI command: it does not
	// write daemon.json, so other commands do not find it.
	Ephemeral bool
	// Logger receives the daemon's logs; default slog.Default().
	Logger *slog.Logger
}

// Held is what the hosting ledger says about one peer.
type Held struct {
	ForThem int64 // bytes this node keeps for the peer
	ByThem  int64 // bytes the peer keeps for this node
}

// Ledger reports the bytes held for and by each peer (internal/hosting).
type Ledger func(ctx context.Context) (map[peer.ID]Held, error)

// ErrAlreadyRunning is returned by Start when a daemon already serves the home.
var ErrAlreadyRunning = errors.New("a daemon is already running for this home")

// Daemon is a running node with its API.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	mux      *http.ServeMux
	hooks    []func(context.Context, *Daemon) error
	stops    []func() error
	onSet    []func(p2p.Settings)
	services []service
	ledger   Ledger

	node    *p2p.Node
	key     string
	ln      net.Listener
	srv     *http.Server
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
	errs    chan error
}

type service struct {
	name string
	run  func(ctx context.Context) error
}

// New returns a daemon; nothing runs until Start.
func New(cfg Config) *Daemon {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Node.Logger == nil {
		cfg.Node.Logger = cfg.Logger
	}
	if cfg.APIAddr == "" {
		cfg.APIAddr = "127.0.0.1:0"
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), errs: make(chan error, 1)}
	d.routes()
	return d
}

// Home is the daemon's home.
func (d *Daemon) Home() home.Home { return d.cfg.Node.Home }

// Handle adds an API handler (net/http pattern syntax, e.g. "GET
// /v1/sources"), served behind the API key. Call it before Start.
func (d *Daemon) Handle(pattern string, h http.Handler) { d.mux.Handle(pattern, h) }

// OnStart adds a hook run once the node is up and before the API serves,
// e.g. to register libp2p protocol handlers on d.Node().Host(). An error
// stops Start.
func (d *Daemon) OnStart(fn func(ctx context.Context, d *Daemon) error) {
	d.hooks = append(d.hooks, fn)
}

// OnStop adds a function run at shutdown, after the services stopped and
// before the node stops, in reverse order of registration.
func (d *Daemon) OnStop(fn func() error) { d.stops = append(d.stops, fn) }

// OnSettings adds a function called with the node's settings whenever the
// API changes them (offer, community mode).
func (d *Daemon) OnSettings(fn func(p2p.Settings)) { d.onSet = append(d.onSet, fn) }

// AddService adds a background service started with the daemon; its
// context is cancelled at shutdown. OnStart hooks may add services too. A service returning an error other
// than context.Canceled stops the daemon.
func (d *Daemon) AddService(name string, run func(ctx context.Context) error) {
	d.services = append(d.services, service{name: name, run: run})
}

// SetLedger sets where the peer table's held_for_them and held_by_them
// come from.
func (d *Daemon) SetLedger(l Ledger) { d.ledger = l }

// Node returns the p2p node (nil before Start).
func (d *Daemon) Node() *p2p.Node { return d.node }

// Addr is the API's address once started.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// APIKey is the home's API key once started.
func (d *Daemon) APIKey() string { return d.key }

// Client returns an API client for this daemon.
func (d *Daemon) Client() *api.Client { return api.NewClient(d.Addr(), d.key) }

// Start starts the node, the hooks, the services and the API.
func (d *Daemon) Start(ctx context.Context) error {
	if d.started {
		return errors.New("daemon already started")
	}
	h := d.Home()
	if err := h.Ensure(); err != nil {
		return err
	}
	if !d.cfg.Ephemeral {
		if _, err := api.FromHome(ctx, h); err == nil {
			return fmt.Errorf("%w (%s)", ErrAlreadyRunning, h.DaemonPath())
		}
	}
	host, _, err := net.SplitHostPort(d.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("API address %q: %w", d.cfg.APIAddr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("API address %q: the API listens on loopback only (127.0.0.1)", d.cfg.APIAddr)
	}
	key, err := api.LoadOrCreateKey(h)
	if err != nil {
		return err
	}
	d.key = key
	node, err := p2p.New(ctx, d.cfg.Node)
	if err != nil {
		return err
	}
	d.node = node
	for _, hook := range d.hooks {
		if err := hook(ctx, d); err != nil {
			_ = d.Close()
			return fmt.Errorf("start daemon: %w", err)
		}
	}
	ln, err := net.Listen("tcp", d.cfg.APIAddr)
	if err != nil {
		_ = d.Close()
		return fmt.Errorf("start API: %w", err)
	}
	d.ln = ln
	d.srv = &http.Server{
		Handler:           api.RequireKey(key, d.mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	runCtx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.fail(fmt.Errorf("API: %w", err))
		}
	}()
	for _, s := range d.services {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := s.run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				d.fail(fmt.Errorf("service %s: %w", s.name, err))
			}
		}()
	}
	if !d.cfg.Ephemeral {
		b, _ := json.Marshal(api.Daemon{Addr: ln.Addr().String(), PID: os.Getpid()})
		if err := home.WriteFileAtomic(h.DaemonPath(), b, 0o600); err != nil {
			_ = d.Close()
			return err
		}
	}
	d.started = true
	d.log.Info("daemon started", "api", ln.Addr().String(), "node_id", node.ID().String())
	return nil
}

func (d *Daemon) fail(err error) {
	select {
	case d.errs <- err:
	default:
	}
}

// Run starts the daemon if needed and serves until ctx is cancelled or a
// service fails, then shuts down cleanly.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.started {
		if err := d.Start(ctx); err != nil {
			return err
		}
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-d.errs:
		d.log.Error("daemon failed", "err", runErr)
	}
	return errors.Join(runErr, d.Close())
}

// Close stops the API, the services and the node, and removes daemon.json.
func (d *Daemon) Close() error {
	var errs []error
	if !d.cfg.Ephemeral && d.ln != nil {
		if err := os.Remove(d.Home().DaemonPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if d.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		errs = append(errs, d.srv.Shutdown(sctx))
		cancel()
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	for i := len(d.stops) - 1; i >= 0; i-- {
		errs = append(errs, d.stops[i]())
	}
	d.stops = nil
	if d.node != nil {
		errs = append(errs, d.node.Close())
	}
	d.started = false
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop daemon: %w", err)
	}
	d.log.Info("daemon stopped")
	return nil
}
