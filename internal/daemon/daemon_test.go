package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/wire"
)

// testDaemon starts a daemon whose node only touches loopback.
func testDaemon(t *testing.T, dir string) *Daemon {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	d := New(Config{
		Node: p2p.Config{
			Home:   home.Home{Dir: dir},
			Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
			NoMDNS: true, NoNATPortMap: true, NoRelay: true,
			ReconnectMin: 200 * time.Millisecond, ReconnectMax: 2 * time.Second,
		},
		Logger: log,
	})
	EnableHosting(d)
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestAPIKeyRequired(t *testing.T) {
	dir := t.TempDir()
	d := testDaemon(t, dir)
	h := home.Home{Dir: dir}
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"wrong key", "Bearer 00", http.StatusUnauthorized},
		{"key without Bearer", d.APIKey(), http.StatusUnauthorized},
		{"right key", "Bearer " + d.APIKey(), http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+d.Addr()+api.PathID, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	st, err := os.Stat(h.APIKeyPath())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("API key file: %v %v", st, err)
	}

	// The CLI finds the daemon through the home; a second one is refused.
	c, err := api.FromHome(context.Background(), h)
	if err != nil {
		t.Fatalf("find daemon: %v", err)
	}
	id, err := c.ID(context.Background())
	if err != nil || id.NodeID != d.Node().ID().String() || len(id.Addrs) == 0 {
		t.Fatalf("id: %+v %v", id, err)
	}
	second := New(Config{Node: p2p.Config{Home: h, NoMDNS: true, NoNATPortMap: true, NoRelay: true,
		Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, Logger: slog.New(slog.DiscardHandler)})
	if err := second.Start(context.Background()); !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second daemon: %v, want ErrAlreadyRunning", err)
	}

	var df api.Daemon
	b, err := os.ReadFile(h.DaemonPath())
	if err != nil || json.Unmarshal(b, &df) != nil || df.Addr != d.Addr() || df.PID != os.Getpid() {
		t.Fatalf("daemon.json: %s %v", b, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h.DaemonPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("daemon.json left after close: %v", err)
	}
	if _, err := api.FromHome(context.Background(), h); !errors.Is(err, api.ErrNoDaemon) {
		t.Fatalf("after close: %v, want ErrNoDaemon", err)
	}
}

func TestAPIPeersAndOffer(t *testing.T) {
	ctx := context.Background()
	a := testDaemon(t, t.TempDir())
	b := testDaemon(t, t.TempDir())
	ca, cb := a.Client(), b.Client()

	inv, err := ca.Invite(ctx, time.Minute, false)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cb.Join(ctx, inv.Code)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if p.NodeID != a.Node().ID().String() || p.Trust != "friend" || !p.Connected {
		t.Fatalf("joined peer: %+v", p)
	}
	var se *api.StatusError
	if _, err := cb.Join(ctx, inv.Code); !errors.As(err, &se) || se.Status != http.StatusForbidden {
		t.Fatalf("reused code: %v, want HTTP 403", err)
	}
	if _, err := cb.Join(ctx, "not-a-code"); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		t.Fatalf("bad code: %v, want HTTP 400", err)
	}

	// EnableHosting serves the storage protocol on the node's host.
	served := a.Node().Host().Mux().Protocols()
	for _, proto := range wire.Protocols {
		if !slices.Contains(served, proto) {
			t.Errorf("storage protocol %s not served", proto)
		}
	}

	bid := b.Node().ID().String()
	if err := ca.Name(ctx, bid, "laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.SetOffer(ctx, api.OfferRequest{Size: "1GB", NodeID: bid}); err != nil {
		t.Fatal(err)
	}
	community := true
	off, err := ca.SetOffer(ctx, api.OfferRequest{Size: "5GB", Community: &community})
	if err != nil || off.OfferBytes != 5e9 || !off.Community {
		t.Fatalf("offer: %+v %v", off, err)
	}
	if got := a.Node().Settings(); got.OfferBytes != 5e9 || !got.Community {
		t.Fatalf("settings not saved: %+v", got)
	}
	peers, err := ca.Peers(ctx)
	if err != nil || len(peers) != 1 {
		t.Fatalf("peers: %+v %v", peers, err)
	}
	if q := peers[0]; q.Name != "laptop" || q.QuotaBytes != 1e9 || q.Trust != "friend" {
		t.Fatalf("peer row: %+v", q)
	}
	if err := ca.Block(ctx, bid); err != nil {
		t.Fatal(err)
	}
	if err := ca.Remove(ctx, bid); err != nil {
		t.Fatal(err)
	}
	if err := ca.Remove(ctx, bid); !errors.As(err, &se) || se.Status != http.StatusNotFound {
		t.Fatalf("remove unknown: %v, want 404", err)
	}
}
