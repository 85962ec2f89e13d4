package placement

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// TestRepositoryThroughHosts backs up blobs into a real local repository,
// places it on hosts, then opens it on "a new machine" from the hosts
// alone (empty placement record, no local copy) and reads every blob.
func TestRepositoryThroughHosts(t *testing.T) {
	ctx := context.Background()
	pass := []byte("correct horse")
	opts := repo.Options{KDF: &crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}}
	st, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, st, pass, opts)
	if err != nil {
		t.Fatal(err)
	}
	v := newEnv(t, 5, Erasure(3, 2))
	blobs := map[crypto.ID][]byte{}
	for i := 0; i < 40; i++ {
		d := randBytes(v.rnd, 50000+i*997)
		id := r.Keys().BlobID(d)
		blobs[id] = d
		if _, err := r.SaveBlob(ctx, repo.DataBlob, id, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	r.Close()

	sum, err := v.e.Sync(ctx, st, v.cands(), SyncOptions{HostList: []byte("hosts")})
	if err != nil || sum.Placed == 0 || sum.Degraded+sum.Missing+sum.MetaIncomplete != 0 {
		t.Fatalf("sync: %+v %v", sum, err)
	}
	// Hosts hold only ciphertext: no blob's plaintext appears on any.
	for _, h := range v.hosts {
		h.mu.Lock()
		for _, o := range h.objs {
			for _, d := range blobs {
				if bytes.Contains(o.data, d[:64]) {
					t.Fatalf("plaintext on %s", h.id)
				}
			}
		}
		h.mu.Unlock()
	}

	// A new machine, two hosts down.
	v.hosts[1].set(func(f *fakeHost) { f.offline = true })
	v.hosts[3].set(func(f *fakeHost) { f.offline = true })
	fresh := v.open("new-machine.db", Redundancy{})
	peers := NewStore(fresh, v.cands, StoreOptions{})
	r2, err := repo.Open(ctx, peers, pass, opts)
	if err != nil {
		t.Fatalf("open from hosts: %v", err)
	}
	defer r2.Close()
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatalf("load index from hosts: %v", err)
	}
	for id, d := range blobs {
		got, err := r2.LoadBlob(ctx, id, nil)
		if err != nil || !bytes.Equal(got, d) {
			t.Fatalf("blob %s: %v", id, err)
		}
	}
	var n int
	if err := peers.List(ctx, store.Pack, func(store.Info) error { n++; return nil }); err != nil || n != sum.Placed {
		t.Fatalf("listed %d packs of %d: %v", n, sum.Placed, err)
	}
}
