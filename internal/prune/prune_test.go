package prune_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/check"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/prune"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

var cheapKDF = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

// failingStore fails every Put and Delete after the first n, as a full
// disk or a crash would: the operations before it happened, none after.
type failingStore struct {
	store.Store
	mu sync.Mutex
	n  int
}

var errDiskFull = fmt.Errorf("write: %w", syscall.ENOSPC)

func (f *failingStore) allow() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n <= 0 {
		return false
	}
	f.n--
	return true
}

func (f *failingStore) Put(ctx context.Context, h store.Handle, r io.Reader, size int64) error {
	if h.Type != store.Lock && !f.allow() {
		return errDiskFull
	}
	return f.Store.Put(ctx, h, r, size)
}

func (f *failingStore) Delete(ctx context.Context, h store.Handle) error {
	if h.Type != store.Lock && !f.allow() {
		return errDiskFull
	}
	return f.Store.Delete(ctx, h)
}

func writeRandom(t *testing.T, rng *rand.Rand, p string, n int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	dir, src string
	want     map[string]map[string]string // snapshot → path → sha256
}

func open(t *testing.T, st store.Store) *repo.Repository {
	t.Helper()
	r, err := repo.Open(context.Background(), st, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (f *fixture) store(t *testing.T) store.Store {
	t.Helper()
	st, err := local.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// newFixture backs up a changing tree four times, then forgets the first
// two snapshots, so that some packs are unused and some partly used.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	base := t.TempDir()
	f := &fixture{dir: filepath.Join(base, "repo"), src: filepath.Join(base, "src"), want: map[string]map[string]string{}}
	st, err := local.Create(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var ids []string
	for round := 0; round < 4; round++ {
		for i := 0; i < 6; i++ {
			// The first round writes every file; later rounds change two,
			// leaving the first round's pack partly used.
			if round == 0 || i == round || i == round+2 {
				writeRandom(t, rng, filepath.Join(f.src, fmt.Sprintf("d%d/f%d", i%2, i)), 1000+rng.IntN(600<<10))
			}
		}
		if round == 2 {
			os.Remove(filepath.Join(f.src, "d0/f0"))
		}
		r := open(t, f.store(t))
		sum, err := backup.Run(ctx, r, backup.Options{Paths: []string{f.src}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sum.SnapshotID)
		f.want[sum.SnapshotID] = manifestFS(t, f.src)
	}
	r = open(t, f.store(t))
	for _, s := range ids[:2] {
		id, _ := crypto.ParseID(s)
		if err := r.DeleteSnapshot(ctx, id); err != nil {
			t.Fatal(err)
		}
		delete(f.want, s)
	}
	return f
}

func manifestFS(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// manifestRepo reads every file of a snapshot back through the repository.
func manifestRepo(t *testing.T, r *repo.Repository, snap string) map[string]string {
	t.Helper()
	ctx := context.Background()
	s, err := r.FindSnapshot(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(dir string, id crypto.ID)
	walk = func(dir string, id crypto.ID) {
		tr, err := r.LoadTree(ctx, id)
		if err != nil {
			t.Fatalf("snapshot %s: %v", snap[:8], err)
		}
		for _, n := range tr.Nodes {
			p := path.Join(dir, n.Name)
			switch {
			case n.Subtree != nil:
				walk(p, *n.Subtree)
			case n.Type == repo.NodeFile:
				h := sha256.New()
				for _, b := range n.Content {
					data, err := r.LoadBlob(ctx, b, nil)
					if err != nil {
						t.Fatalf("snapshot %s, %s: %v", snap[:8], p, err)
					}
					h.Write(data)
				}
				out[p] = hex.EncodeToString(h.Sum(nil))
			}
		}
	}
	walk("/", s.Tree)
	return out
}

func (f *fixture) verify(t *testing.T, warningsOK bool) {
	t.Helper()
	r := open(t, f.store(t))
	res, err := check.Run(context.Background(), r, check.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("check: %v", res.Errors)
	}
	if !warningsOK && len(res.Warnings) > 0 {
		t.Fatalf("check warnings: %v", res.Warnings)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	snaps, _, err := r.Snapshots(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != len(f.want) {
		t.Fatalf("%d snapshots, want %d", len(snaps), len(f.want))
	}
	for id, want := range f.want {
		got := manifestRepo(t, r, id)
		if len(got) != len(want) {
			t.Fatalf("snapshot %s: %d files, want %d", id[:8], len(got), len(want))
		}
		for p, h := range want {
			if got[p] != h {
				t.Fatalf("snapshot %s: %s differs", id[:8], p)
			}
		}
	}
}

func TestPrune(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dry, err := prune.Run(ctx, open(t, f.store(t)), prune.Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	st, err := prune.Run(ctx, open(t, f.store(t)), prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *st)
	if st.BytesFreed == 0 || st.PacksDeleted+st.PacksRepacked == 0 {
		t.Fatalf("nothing pruned: %+v", *st)
	}
	dry.DryRun = false
	dry.IndexesWritten, dry.IndexesRemoved = st.IndexesWritten, st.IndexesRemoved
	dry.PacksWritten, dry.TempFiles = st.PacksWritten, st.TempFiles
	if *dry != *st {
		t.Errorf("dry run said %+v, prune did %+v", *dry, *st)
	}
	f.verify(t, false)
	// A second prune finds nothing to do.
	st, err = prune.Run(ctx, open(t, f.store(t)), prune.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesFreed != 0 || st.PacksWritten != 0 || st.IndexesWritten != 0 {
		t.Fatalf("second prune did something: %+v", *st)
	}
}

func TestPruneMaxUnused(t *testing.T) {
	f := newFixture(t)
	st, err := prune.Run(context.Background(), open(t, f.store(t)), prune.Options{MaxUnused: 100})
	if err != nil {
		t.Fatal(err)
	}
	if st.PacksRepacked != 0 {
		t.Fatalf("repacked with --max-unused 100: %+v", *st)
	}
	f.verify(t, false)
}

// TestPruneInterrupted stops prune after each of its writes in turn, as a
// crash or a full disk would, and checks that the repository is intact
// each time and that a second prune finishes the job.
func TestPruneInterrupted(t *testing.T) {
	ctx := context.Background()
	for n := 0; ; n++ {
		f := newFixture(t)
		fs := &failingStore{Store: f.store(t), n: n}
		st, err := prune.Run(ctx, open(t, fs), prune.Options{})
		if err == nil {
			if n == 0 {
				t.Fatal("prune wrote nothing")
			}
			t.Logf("prune completes after %d writes: %+v", n, *st)
			f.verify(t, false)
			return
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("after %d writes: %v", n, err)
		}
		f.verify(t, true)
		if _, err := prune.Run(ctx, open(t, f.store(t)), prune.Options{}); err != nil {
			t.Fatalf("rerun after %d writes: %v", n, err)
		}
		f.verify(t, false)
		if n > 200 {
			t.Fatal("prune never completes")
		}
	}
}

func TestPruneRefusesDamage(t *testing.T) {
	f := newFixture(t)
	// Remove every index: the snapshots' blobs are then unknown.
	var idx []string
	f.store(t).List(context.Background(), store.Index, func(i store.Info) error {
		idx = append(idx, i.Handle.Name)
		return nil
	})
	for _, n := range idx {
		if err := f.store(t).Delete(context.Background(), store.Handle{Type: store.Index, Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	before := 0
	f.store(t).List(context.Background(), store.Pack, func(store.Info) error { before++; return nil })
	_, err := prune.Run(context.Background(), open(t, f.store(t)), prune.Options{})
	if !errors.Is(err, prune.ErrDamaged) {
		t.Fatalf("err = %v, want ErrDamaged", err)
	}
	after := 0
	f.store(t).List(context.Background(), store.Pack, func(store.Info) error { after++; return nil })
	if after != before {
		t.Fatalf("prune deleted packs of a damaged repository: %d → %d", before, after)
	}
}
