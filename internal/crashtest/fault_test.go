package crashtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/check"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// faultyStore fails Put (and, with failDelete, Delete) once n of them have
// succeeded, the way a full disk does: with ENOSPC.
type faultyStore struct {
	store.Store
	mu         sync.Mutex
	n          int
	failDelete bool
	failed     int
}

var _ store.Store = (*faultyStore)(nil)

func (f *faultyStore) allow() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n <= 0 {
		f.failed++
		return false
	}
	f.n--
	return true
}

func (f *faultyStore) Put(ctx context.Context, h store.Handle, r io.Reader, size int64) error {
	if !f.allow() {
		return fmt.Errorf("put %s: %w", h, &os.PathError{Op: "write", Path: h.String(), Err: syscall.ENOSPC})
	}
	return f.Store.Put(ctx, h, r, size)
}

func (f *faultyStore) Delete(ctx context.Context, h store.Handle) error {
	if f.failDelete && !f.allow() {
		return fmt.Errorf("delete %s: %w", h, syscall.EIO)
	}
	return f.Store.Delete(ctx, h)
}

// TestBackupDiskFull makes the store fail after every possible number of
// writes in turn. Each failed backup must end with a one-line error that
// says the disk is full, leave the earlier snapshots intact and the
// repository passing check, and the next backup must complete.
func TestBackupDiskFull(t *testing.T) {
	e := newEnv(t, testSeed(t))
	e.generate()
	e.backup()
	ctx := context.Background()
	for n := 0; ; n++ {
		e.mutate()
		st, err := local.Open(e.repo)
		if err != nil {
			t.Fatal(err)
		}
		fs := &faultyStore{Store: st, n: n}
		r, err := repo.Open(ctx, fs, []byte(password), repo.Options{})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := backup.Run(ctx, r, backup.Options{Paths: []string{e.src}})
		r.Close()
		if err == nil {
			if fs.failed > 0 {
				t.Fatalf("after %d writes: a write failed but the backup succeeded", n)
			}
			e.want[sum.SnapshotID] = manifestFS(t, e.src, "")
			t.Logf("a backup needs %d writes; every shorter run failed cleanly", n)
			break
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(msg, "no space left on device") {
			t.Fatalf("after %d writes: error %q is not one line naming the full disk", n, msg)
		}
		if n < 3 || n%5 == 0 {
			t.Logf("after %d writes: %s", n, msg)
		}
		res, err := check.Run(ctx, openRepo(t, e.repo), check.Options{ReadData: true})
		if err != nil {
			t.Fatal(err)
		}
		if !res.OK() {
			t.Fatalf("after %d writes: check: %v", n, res.Errors)
		}
		e.verify(fmt.Sprintf("after %d writes", n))
		if n > 500 {
			t.Fatal("backup never completes")
		}
	}
	e.backup()
	e.check("after the disk-full runs")
	e.mustRun("prune")
	if w := e.check("after prune"); w != 0 {
		t.Fatalf("%d warnings after prune", w)
	}
	e.verify("final")
}

func openRepo(t *testing.T, dir string) *repo.Repository {
	t.Helper()
	st, err := local.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(context.Background(), st, []byte(password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// TestBackupDiskFullCLI fills a real (tmpfs) file system under the
// repository and runs the binary: one line of error, a distinct exit, and
// every earlier snapshot intact once space is freed. It needs root to
// mount; it is skipped otherwise.
func TestBackupDiskFullCLI(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	e := newEnvAt(t, testSeed(t), filepath.Join(mnt, "repo"))
	e.writeFile("small/a", e.randomBytes(300<<10))
	e.writeFile("small/b", e.textBytes(100<<10))
	e.backup()
	// Room for about a megabyte more, then a 12 MB backup.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 6<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 6; i++ {
		e.writeFile(fmt.Sprintf("large/%d", i), e.randomBytes(2<<20))
	}
	out, stderr, code := e.run("backup", e.src)
	t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
	if code == 0 {
		t.Fatalf("backup onto a full disk succeeded: %s", out)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if !strings.HasPrefix(lines[0], "cairn: error: ") || !strings.Contains(lines[0], "no space left on device") || len(lines) > 2 {
		t.Fatalf("error output is not one clear line: %q", stderr)
	}
	if bytes.Contains([]byte(stderr), []byte("goroutine ")) {
		t.Fatalf("stack trace in error output: %s", stderr)
	}
	// The user frees space: everything earlier is intact.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	e.check("after the disk-full backup")
	e.verify("after the disk-full backup")
	e.mustRun("prune")
	e.check("after prune")
	e.verify("after prune")
}

// TestCheckCLINamesDamage flips a byte in a pack and truncates another
// and expects cairn check to exit 17 naming both packs and the snapshot.
func TestCheckCLINamesDamage(t *testing.T) {
	e := newEnv(t, testSeed(t))
	e.generate()
	snap := e.backup()
	var packs []string
	filepath.WalkDir(filepath.Join(e.repo, "data"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) < 2 {
		t.Fatalf("%d packs", len(packs))
	}
	flip := func(p string, fn func([]byte) []byte) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, 0o600)
		if err := os.WriteFile(p, fn(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	flip(packs[0], func(b []byte) []byte { b[len(b)/3] ^= 1; return b })
	flip(packs[1], func(b []byte) []byte { return b[:len(b)-1] })
	out, stderr, code := e.run("check", "--read-data")
	if code != 17 {
		t.Fatalf("exit %d, want 17\n%s%s", code, out, stderr)
	}
	for _, p := range packs[:2] {
		if !strings.Contains(stderr, filepath.Base(p)) {
			t.Errorf("output does not name pack %s:\n%s", filepath.Base(p), stderr)
		}
	}
	if !strings.Contains(stderr, snap[:8]) {
		t.Errorf("output does not name the affected snapshot %s:\n%s", snap[:8], stderr)
	}
	last := strings.Split(strings.TrimSpace(stderr), "\n")
	if !strings.Contains(strings.Join(last, "\n"), "cairn: error: check found") {
		t.Errorf("no summary error line:\n%s", stderr)
	}
	// Prune refuses to touch a damaged repository.
	if _, stderr, code := e.run("prune"); code == 0 {
		t.Fatalf("prune ran on a damaged repository: %s", stderr)
	}
}
