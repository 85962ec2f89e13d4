package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
)

// StartLoopback starts a short-lived node for h that listens on 127.0.0.1
// only, with LAN discovery, port mapping and relays off: what the demo and
// tests run, several to a process, without sending anything beyond this
// machine. With hosting set it keeps other owners' data (offer 1 GiB).
func StartLoopback(ctx context.Context, h home.Home, name string, hosting bool, log *slog.Logger) (*Daemon, error) {
	if err := h.Ensure(); err != nil {
		return nil, err
	}
	st := p2p.Settings{Version: 1, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, NoMDNS: true, NoNATPortMap: true, NoRelay: true, OfferBytes: 1 << 30}
	if err := p2p.SaveSettings(h, st); err != nil {
		return nil, err
	}
	d := New(Config{Node: p2p.Config{Home: h, Name: name}, Ephemeral: true, Logger: log})
	if hosting {
		EnableHosting(d)
	}
	if err := d.Start(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return d, nil
}
