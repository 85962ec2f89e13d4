package peerstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/daemon"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store/local"
)

func startNode(t *testing.T, name string, hosting bool) (*daemon.Daemon, home.Home) {
	t.Helper()
	h := home.Home{Dir: filepath.Join(t.TempDir(), name)}
	d, err := daemon.StartLoopback(context.Background(), h, name, hosting, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, h
}

// A closed WAN window holds placement back for hosts outside the LAN and
// never for reads; opening it lets the placement complete.
func TestWANWindow(t *testing.T) {
	ctx := context.Background()
	owner, oh := startNode(t, "owner", false)
	host, _ := startNode(t, "host", true)
	code, _, err := host.Node().CreateInvite(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Node().Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	st, _ := local.Create(oh.RepoDir())
	r, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p2p.IssueNodeCert(oh, r.Keys()); err != nil {
		t.Fatal(err)
	}
	d := []byte("some data")
	r.SaveBlob(ctx, repo.DataBlob, r.Keys().BlobID(d), d)
	if err := r.FlushFinal(ctx); err != nil {
		t.Fatal(err)
	}
	// The host is on the WAN, and the window is a minute that is not now.
	owner.Node().Peers().Update(host.Node().ID(), true, func(p *p2p.Peer) { p.LAN = false })
	closed := time.Now().Add(12 * time.Hour)
	settings, _ := p2p.LoadSettings(oh)
	settings.WANWindow = fmt.Sprintf("%02d:%02d-%02d:%02d", closed.Hour(), closed.Minute(), closed.Add(time.Minute).Hour(), closed.Add(time.Minute).Minute())
	p2p.SaveSettings(oh, settings)

	p, err := peerstore.Open(ctx, peerstore.Options{Home: oh, Node: owner.Node()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	sum, err := p.Sync(ctx, st, placement.SyncOptions{Redundancy: placement.Replicas(1)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Placed != 0 || sum.PiecesSent != 0 {
		t.Fatalf("placed on a WAN host outside its window: %+v", sum)
	}
	// Reads ignore the window.
	if c := p.Candidates(ctx); len(c) != 1 || !c[0].Info.Online {
		t.Fatalf("candidates for reads: %+v", c)
	}
	settings.WANWindow = ""
	p2p.SaveSettings(oh, settings)
	sum, err = p.Sync(ctx, st, placement.SyncOptions{Redundancy: placement.Replicas(1)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Placed == 0 || sum.Missing != 0 {
		t.Fatalf("window open, nothing placed: %+v", sum)
	}
}
