package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/store"
)

var portRE = regexp.MustCompile(`/(tcp|udp)/[0-9]+`)

// zeroPorts turns listen addresses into the same interfaces on any free
// port, so a helper node can run beside the home's daemon.
func zeroPorts(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = portRE.ReplaceAllString(a, "/$1/0")
	}
	return out
}

func (g *Globals) logger() *slog.Logger {
	if g.Getenv("CAIRN_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// peerStore is the hosts as a store, through a node of its own.
type peerStore struct {
	store.Store
	close func() error
}

func (p *peerStore) Close() error { return p.close() }

// openPeerReader starts a short-lived node with a throwaway key (so it can
// run beside the home's daemon), knowing the home's friends, and returns
// the hosts as a store. Ownership is proved with the owner key itself:
// hosts serve reads to any node that proves it acts for the owner.
func (g *Globals) openPeerReader(ctx context.Context, h home.Home, keys *crypto.Keys) (store.Store, error) {
	tmp, err := os.MkdirTemp("", "cairn-reader-")
	if err != nil {
		return nil, err
	}
	th := home.Home{Dir: tmp}
	settings, err := p2p.LoadSettings(h)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	settings.Listen = zeroPorts(settings.Listen)
	if err := p2p.SaveSettings(th, settings); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if b, err := os.ReadFile(p2p.PeersPath(h)); err == nil {
		if err := home.WriteFileAtomic(p2p.PeersPath(th), b, 0o600); err != nil {
			os.RemoveAll(tmp)
			return nil, err
		}
	}
	log := g.logger()
	node, err := p2p.New(ctx, p2p.Config{Home: th, Listen: settings.Listen, Logger: log})
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("start a node to read from peers: %w", err)
	}
	p, err := peerstore.Open(ctx, peerstore.Options{Home: th, Node: node, Signer: hostclient.OwnerSigner(keys), Logger: log})
	if err != nil {
		node.Close()
		os.RemoveAll(tmp)
		return nil, err
	}
	return &peerStore{Store: p.Store(placement.Redundancy{}), close: func() error {
		err := errors.Join(p.Close(), node.Close())
		os.RemoveAll(tmp)
		return err
	}}, nil
}

var _ io.Closer = (*peerStore)(nil)
