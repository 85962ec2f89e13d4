package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/daemon"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
	"github.com/cairn-backup/cairn/internal/store/tiered"
)

// startNodes starts in-process nodes on loopback; the first is the owner.
func startNodes(b *testing.B, n int) ([]*daemon.Daemon, []home.Home) {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	var ds []*daemon.Daemon
	var hs []home.Home
	for i := 0; i < n; i++ {
		h := home.Home{Dir: filepath.Join(b.TempDir(), fmt.Sprint("n", i))}
		d, err := daemon.StartLoopback(ctx, h, fmt.Sprint("n", i), i > 0, quiet)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { d.Close() })
		ds, hs = append(ds, d), append(hs, h)
	}
	for i := 1; i < n; i++ {
		code, _, err := ds[i].Node().CreateInvite(time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ds[0].Node().Join(ctx, code); err != nil {
			b.Fatal(err)
		}
	}
	return ds, hs
}

// BenchmarkPeers measures, for each redundancy on four hosts, placing a
// backup on the hosts and restoring from them, as ratios to the local
// backup and restore of the same data, and the bytes sent per byte stored.
func BenchmarkPeers(b *testing.B) {
	ctx := context.Background()
	src := filepath.Join(b.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	var total int64
	for i := 0; i < 4; i++ {
		d := make([]byte, 12<<20)
		rand.Read(d)
		os.WriteFile(filepath.Join(src, fmt.Sprint("f", i)), d, 0o644)
		total += int64(len(d))
	}
	for _, red := range []string{"1", "2", "3", "2+1", "2+2"} {
		b.Run("redundancy="+red, func(b *testing.B) {
			rd, _ := placement.ParseRedundancy(red)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ds, hs := startNodes(b, 5)
				st, _ := local.Create(hs[0].RepoDir())
				r, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}})
				if err != nil {
					b.Fatal(err)
				}
				p2p.IssueNodeCert(hs[0], r.Keys())
				b.StartTimer()

				t0 := time.Now()
				sum, err := backup.Run(ctx, r, backup.Options{Paths: []string{src}})
				if err != nil {
					b.Fatal(err)
				}
				localBackup := time.Since(t0)
				peers, err := peerstore.Open(ctx, peerstore.Options{Home: hs[0], Node: ds[0].Node()})
				if err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				ps, err := peers.Sync(ctx, st, placement.SyncOptions{Redundancy: rd})
				if err != nil || ps.Degraded+ps.Missing > 0 {
					b.Fatalf("sync: %+v %v", ps, err)
				}
				place := time.Since(t1)

				snap, _ := r.FindSnapshot(ctx, sum.SnapshotID)
				t2 := time.Now()
				if _, err := restore.Run(ctx, r, snap, restore.Options{Target: filepath.Join(b.TempDir(), "local")}); err != nil {
					b.Fatal(err)
				}
				localRestore := time.Since(t2)
				os.RemoveAll(filepath.Join(hs[0].RepoDir(), "data"))
				os.MkdirAll(filepath.Join(hs[0].RepoDir(), "data"), 0o700)
				reader := peers.Store(placement.Redundancy{})
				ts := tiered.New(st, func(context.Context) (store.Store, error) { return reader, nil }, true)
				r2, err := repo.Open(ctx, ts, []byte("pw"), repo.Options{})
				if err != nil {
					b.Fatal(err)
				}
				t3 := time.Now()
				if _, err := restore.Run(ctx, r2, snap, restore.Options{Target: filepath.Join(b.TempDir(), "peers")}); err != nil {
					b.Fatal(err)
				}
				peerRestore := time.Since(t3)
				peers.Close()

				b.ReportMetric(float64(ps.BytesSent)/float64(sum.StoredAdded), "sent/stored")
				b.ReportMetric(float64(total)/place.Seconds()/1e6, "place-MB/s")
				b.ReportMetric(localBackup.Seconds()/(localBackup+place).Seconds(), "backup+place/local-speed")
				b.ReportMetric(localRestore.Seconds()/peerRestore.Seconds(), "peer/local-restore-speed")
			}
		})
	}
}
