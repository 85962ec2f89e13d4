package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store/local"
)

var cheapKDF = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

func newRepo(t *testing.T) *repo.Repository { return newRepoTB(t) }

func newRepoB(b *testing.B) *repo.Repository { return newRepoTB(b) }

func newRepoTB(t testing.TB) *repo.Repository {
	t.Helper()
	st, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), st, []byte("pw"), repo.Options{KDF: &cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

type recorder struct {
	mu    sync.Mutex
	files map[string]backup.FileResult
	cps   int
}

func (r *recorder) File(f backup.FileResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.files == nil {
		r.files = map[string]backup.FileResult{}
	}
	r.files[f.Path] = f
}
func (r *recorder) Checkpoint() { r.mu.Lock(); r.cps++; r.mu.Unlock() }

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestBackupDedupAndParent(t *testing.T) {
	ctx := context.Background()
	r := newRepo(t)
	src := t.TempDir()
	big := randBytes(5 << 20)
	writeFile(t, filepath.Join(src, "a", "big"), big)
	writeFile(t, filepath.Join(src, "a", "copy"), big)
	writeFile(t, filepath.Join(src, "b", "small.txt"), []byte("hello"))
	writeFile(t, filepath.Join(src, "b", "empty"), nil)
	if err := os.Symlink("nowhere", filepath.Join(src, "dangling")); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s1, err := backup.Run(ctx, r, backup.Options{Paths: []string{src}, Reporter: rec})
	if err != nil {
		t.Fatal(err)
	}
	if s1.Files != 4 || s1.Links != 1 || s1.Failed != 0 {
		t.Fatalf("summary: %+v", s1.Summary)
	}
	// Both copies of big share their chunks: only one copy is added.
	if s1.BytesAdded > int64(len(big))+100 {
		t.Fatalf("dedup failed: %d bytes added for a %d byte file stored twice", s1.BytesAdded, len(big))
	}
	if rec.cps == 0 {
		t.Fatal("no checkpoint reported")
	}
	snap, err := r.FindSnapshot(ctx, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if snap.ID.String() != s1.SnapshotID {
		t.Fatalf("latest = %s, want %s", snap.ID, s1.SnapshotID)
	}
	// Walk to the file through the full path.
	tree, err := r.LoadTree(ctx, snap.Tree)
	if err != nil {
		t.Fatal(err)
	}
	var node *repo.Node
	for _, part := range append(splitAbs(src), "a", "big") {
		node = tree.Find(part)
		if node == nil {
			t.Fatalf("path component %q missing", part)
		}
		if node.Subtree != nil {
			if tree, err = r.LoadTree(ctx, *node.Subtree); err != nil {
				t.Fatal(err)
			}
		}
	}
	var got []byte
	for _, id := range node.Content {
		got, err = r.LoadBlob(ctx, id, got)
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, big) {
		t.Fatal("content read back differs")
	}

	// Second run: nothing changed, nothing read.
	s2, err := backup.Run(ctx, r, backup.Options{Paths: []string{src}})
	if err != nil {
		t.Fatal(err)
	}
	if s2.ParentID != s1.SnapshotID || s2.Unchanged < 4 || s2.New != 0 || s2.BytesAdded != 0 {
		t.Fatalf("re-run: %+v parent %s", s2.Summary, s2.ParentID)
	}
	// Open again from disk: the index was written.
	r2, err := repo.Open(ctx, r.Store(), []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range node.Content {
		if !r2.Index().Has(id) {
			t.Fatal("blob missing from the stored index")
		}
	}
	if _, err := repo.Open(ctx, r.Store(), []byte("wrong"), repo.Options{}); err != crypto.ErrWrongPassphrase {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

func splitAbs(p string) []string {
	var out []string
	for p != "/" && p != "." {
		out = append([]string{filepath.Base(p)}, out...)
		p = filepath.Dir(p)
	}
	return out
}

func TestUnreadableFileIsReported(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads every file")
	}
	ctx := context.Background()
	r := newRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "ok"), []byte("fine"))
	writeFile(t, filepath.Join(src, "secret"), []byte("no"))
	os.Chmod(filepath.Join(src, "secret"), 0)
	rec := &recorder{}
	s, err := backup.Run(ctx, r, backup.Options{Paths: []string{src}, Reporter: rec})
	if err != nil {
		t.Fatal(err)
	}
	if s.Failed != 1 || rec.files[filepath.Join(src, "secret")].Status != backup.StatusFailed {
		t.Fatalf("failed=%d", s.Failed)
	}
}

func TestMissingPath(t *testing.T) {
	r := newRepo(t)
	_, err := backup.Run(context.Background(), r, backup.Options{Paths: []string{"/does/not/exist"}})
	if err == nil {
		t.Fatal("backup of a missing path succeeded")
	}
}
