package check_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/check"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

var cheapKDF = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

type fixture struct {
	dir   string // the repository folder
	src   string
	snaps []string
}

// newFixture makes a repository with two snapshots of a small tree.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	base := t.TempDir()
	f := &fixture{dir: filepath.Join(base, "repo"), src: filepath.Join(base, "src")}
	st, err := local.Create(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	write := func(name string, n int) {
		p := filepath.Join(f.src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, n)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/one", 300<<10)
	write("a/two", 5000)
	write("b/three", 1<<20)
	f.snaps = append(f.snaps, f.backup(t))
	write("b/four", 200<<10)
	f.snaps = append(f.snaps, f.backup(t))
	return f
}

func (f *fixture) open(t *testing.T) *repo.Repository {
	t.Helper()
	st, err := local.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), st, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (f *fixture) backup(t *testing.T) string {
	t.Helper()
	r := f.open(t)
	sum, err := backup.Run(context.Background(), r, backup.Options{Paths: []string{f.src}})
	if err != nil {
		t.Fatal(err)
	}
	return sum.SnapshotID
}

func (f *fixture) check(t *testing.T, readData bool) *check.Result {
	t.Helper()
	res, err := check.Run(context.Background(), f.open(t), check.Options{ReadData: readData})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// objects lists the files of one object type in the repository folder.
func (f *fixture) objects(t *testing.T, typ store.Type) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(f.dir, string(typ)), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func modify(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, fn(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// biggestPack returns the largest pack: the one with file data.
func (f *fixture) biggestPack(t *testing.T) string {
	t.Helper()
	var best string
	var size int64
	for _, p := range f.objects(t, store.Pack) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > size {
			best, size = p, fi.Size()
		}
	}
	return best
}

func hasProblem(res *check.Result, kind, id string) *check.Problem {
	for i, p := range res.Errors {
		if p.Kind == kind && (id == "" || p.ID == id) {
			return &res.Errors[i]
		}
	}
	return nil
}

func TestCleanRepository(t *testing.T) {
	f := newFixture(t)
	for _, rd := range []bool{false, true} {
		res := f.check(t, rd)
		if !res.OK() {
			t.Fatalf("read-data=%v: errors: %v", rd, res.Errors)
		}
		if len(res.Warnings) != 0 {
			t.Errorf("warnings: %v", res.Warnings)
		}
		if res.Stats.Snapshots != 2 || res.Stats.Trees == 0 || res.Stats.DataBlobs == 0 {
			t.Errorf("stats: %+v", res.Stats)
		}
		if rd && res.Stats.PacksRead != res.Stats.Packs {
			t.Errorf("read %d of %d packs", res.Stats.PacksRead, res.Stats.Packs)
		}
	}
}

func TestDamage(t *testing.T) {
	tests := []struct {
		name     string
		readData bool
		damage   func(t *testing.T, f *fixture) (kind, id string)
		// affects says whether the problem must name snapshots.
		affects bool
	}{
		{"truncated pack", false, func(t *testing.T, f *fixture) (string, string) {
			p := f.biggestPack(t)
			modify(t, p, func(b []byte) []byte { return b[:len(b)/2] })
			return check.KindPack, filepath.Base(p)
		}, true},
		{"missing pack", false, func(t *testing.T, f *fixture) (string, string) {
			p := f.biggestPack(t)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return check.KindPack, filepath.Base(p)
		}, true},
		{"flipped byte in pack data", true, func(t *testing.T, f *fixture) (string, string) {
			p := f.biggestPack(t)
			modify(t, p, func(b []byte) []byte { b[100] ^= 0x40; return b })
			return check.KindPack, filepath.Base(p)
		}, true},
		{"flipped byte in pack header", true, func(t *testing.T, f *fixture) (string, string) {
			p := f.biggestPack(t)
			modify(t, p, func(b []byte) []byte { b[len(b)-20] ^= 1; return b })
			return check.KindPack, filepath.Base(p)
		}, false},
		{"flipped byte in index", false, func(t *testing.T, f *fixture) (string, string) {
			idx := f.objects(t, store.Index)
			modify(t, idx[0], func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b })
			return check.KindIndex, filepath.Base(idx[0])
		}, true},
		{"flipped byte in snapshot", false, func(t *testing.T, f *fixture) (string, string) {
			p := filepath.Join(f.dir, "snapshots", f.snaps[0])
			modify(t, p, func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b })
			return check.KindSnapshot, f.snaps[0]
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			kind, id := tc.damage(t, f)
			res := f.check(t, tc.readData)
			if res.OK() {
				t.Fatalf("check passed a damaged repository")
			}
			p := hasProblem(res, kind, id)
			if p == nil {
				t.Fatalf("no %s problem naming %s; errors: %v", kind, id, res.Errors)
			}
			if tc.affects {
				named := false
				for _, e := range res.Errors {
					if len(e.Snapshots) > 0 {
						named = true
						for _, s := range e.Snapshots {
							if s != f.snaps[0] && s != f.snaps[1] {
								t.Errorf("problem names unknown snapshot %s", s)
							}
						}
					}
				}
				if !named {
					t.Errorf("no problem names an affected snapshot: %v", res.Errors)
				}
			}
			for _, e := range res.Errors {
				t.Logf("%v", e)
			}
		})
	}
}

func TestUnindexedPackIsAWarning(t *testing.T) {
	f := newFixture(t)
	// A pack stored by a backup that died before writing its index.
	p := f.biggestPack(t)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b = append([]byte{}, b...)
	b[0] ^= 1
	id := crypto.Hash(b)
	st, _ := local.Open(f.dir)
	if err := st.Put(context.Background(), store.Handle{Type: store.Pack, Name: id.String()}, strings.NewReader(string(b)), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	// And a temp file of an interrupted write.
	if err := os.WriteFile(filepath.Join(f.dir, "data", ".tmp-pack-123"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := f.check(t, true)
	if !res.OK() {
		t.Fatalf("errors: %v", res.Errors)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].ID != id.String() {
		t.Fatalf("warnings: %v", res.Warnings)
	}
}

func TestReadDataSubset(t *testing.T) {
	f := newFixture(t)
	res, err := check.Run(context.Background(), f.open(t), check.Options{ReadDataSubset: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("errors: %v", res.Errors)
	}
	want := (res.Stats.Packs + 1) / 2
	if res.Stats.PacksRead != want {
		t.Fatalf("read %d of %d packs, want %d", res.Stats.PacksRead, res.Stats.Packs, want)
	}
}
