package restore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/fsmeta"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
	"github.com/cairn-backup/cairn/internal/store/local"
)

var cheapKDF = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

func newRepo(tb testing.TB) (*repo.Repository, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "repo")
	st, err := local.Create(dir)
	if err != nil {
		tb.Fatal(err)
	}
	r, err := repo.Init(context.Background(), st, []byte("pw"), repo.Options{KDF: &cheapKDF})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r, dir
}

func backupPaths(tb testing.TB, r *repo.Repository, paths ...string) *repo.Snapshot {
	tb.Helper()
	ctx := context.Background()
	sum, err := backup.Run(ctx, r, backup.Options{Paths: paths, Host: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	if sum.Failed > 0 {
		tb.Fatalf("backup: %d entries failed", sum.Failed)
	}
	snap, err := r.FindSnapshot(ctx, sum.SnapshotID)
	if err != nil {
		tb.Fatal(err)
	}
	return snap
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func writeFile(tb testing.TB, p string, data []byte, mode fs.FileMode) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		tb.Fatal(err)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// features says which optional checks the file system allowed.
type features struct {
	sparse bool // the source's sparse file has holes
	xattrs bool // user xattrs could be set
	device bool // a device node could be made
}

const sparseSize = 40 << 20

// makeTree builds a source tree with every kind of entry.
func makeTree(t *testing.T, src string) features {
	t.Helper()
	var f features
	old := time.Date(2001, 2, 3, 4, 5, 6, 789000000, time.UTC)
	writeFile(t, filepath.Join(src, "a", "small.txt"), []byte("hello, world\n"), 0o640)
	writeFile(t, filepath.Join(src, "a", "exec.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	writeFile(t, filepath.Join(src, "a", "empty"), nil, 0o600)
	writeFile(t, filepath.Join(src, "a", "b", "c", "deep"), randBytes(1, 100_000), 0o644)
	for i := range 40 {
		writeFile(t, filepath.Join(src, "many", string(rune('a'+i%26))+strings.Repeat("x", i)), randBytes(uint64(100+i), 1000*i), 0o644)
	}
	// A large file of many chunks, written by several workers.
	writeFile(t, filepath.Join(src, "big.bin"), randBytes(2, 24<<20+12345), 0o644)
	// A name that is not UTF-8.
	writeFile(t, filepath.Join(src, "bad\xff\xfename"), []byte("bytes"), 0o644)
	must(t, os.MkdirAll(filepath.Join(src, "emptydir"), 0o750))
	// A read-only folder with a file inside.
	writeFile(t, filepath.Join(src, "ro", "inside"), []byte("ro"), 0o444)
	// Symlinks, one dangling.
	must(t, os.Symlink("a/small.txt", filepath.Join(src, "link")))
	must(t, os.Symlink("/nonexistent/target", filepath.Join(src, "dangling")))
	// Hardlinks, across folders.
	writeFile(t, filepath.Join(src, "h1"), randBytes(3, 5000), 0o600)
	must(t, os.MkdirAll(filepath.Join(src, "hl"), 0o755))
	must(t, os.Link(filepath.Join(src, "h1"), filepath.Join(src, "hl", "h2")))
	must(t, os.Link(filepath.Join(src, "h1"), filepath.Join(src, "hl", "h3")))
	// A FIFO.
	if err := fsmeta.Mkfifo(filepath.Join(src, "fifo"), 0o640); err != nil {
		t.Logf("no FIFO: %v", err)
	}
	// A device node, when permitted.
	if err := fsmeta.Mknod(filepath.Join(src, "null"), 0o020000|0o666, 0x103); err == nil {
		f.device = true
	}
	// A sparse file: data, a long hole, data.
	sp := filepath.Join(src, "sparse")
	fh, err := os.Create(sp)
	must(t, err)
	_, err = fh.Write(randBytes(4, 100_000))
	must(t, err)
	_, err = fh.WriteAt(randBytes(5, 100_000), sparseSize-100_000)
	must(t, err)
	must(t, fh.Close())
	if fi, err := os.Stat(sp); err == nil && fsmeta.FromInfo(fi).Allocated < sparseSize/2 {
		f.sparse = true
	}
	// Owners, when running as root.
	if os.Geteuid() == 0 {
		must(t, os.Lchown(filepath.Join(src, "a", "exec.sh"), 1234, 5678))
		must(t, os.Lchown(filepath.Join(src, "dangling"), 4321, 8765))
		must(t, os.Lchown(filepath.Join(src, "a", "b"), 1111, 2222))
	}
	// An extended attribute.
	xp := filepath.Join(src, "a", "small.txt")
	if err := fsmeta.SetXattr(xp, "user.cairn", []byte("value\x00\xff")); err == nil {
		if xs, _ := fsmeta.Xattrs(xp); len(xs["user.cairn"]) > 0 {
			f.xattrs = true
		}
	}
	// Times, set last and children first so folder times stick.
	var paths []string
	must(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	for i := len(paths) - 1; i >= 0; i-- {
		p := paths[i]
		mt := old.Add(time.Duration(i) * time.Hour)
		must(t, fsmeta.Lutimes(p, mt.Add(time.Minute), mt))
	}
	must(t, os.Chmod(filepath.Join(src, "ro"), 0o555))
	must(t, fsmeta.Lutimes(filepath.Join(src, "ro"), old, old))
	t.Cleanup(func() { os.Chmod(filepath.Join(src, "ro"), 0o755) })
	return f
}

// compareTrees checks that dst holds exactly what src holds.
func compareTrees(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		a, err := os.Lstat(p)
		if err != nil {
			return err
		}
		b, err := os.Lstat(q)
		if err != nil {
			t.Errorf("%s: missing after restore: %v", rel, err)
			return nil
		}
		if a.Mode() != b.Mode() {
			t.Errorf("%s: mode %v, restored %v", rel, a.Mode(), b.Mode())
		}
		if !a.ModTime().Equal(b.ModTime()) {
			t.Errorf("%s: mtime %v, restored %v", rel, a.ModTime(), b.ModTime())
		}
		sa, sb := fsmeta.FromInfo(a), fsmeta.FromInfo(b)
		if sa.UID != sb.UID || sa.GID != sb.GID {
			t.Errorf("%s: owner %d:%d, restored %d:%d", rel, sa.UID, sa.GID, sb.UID, sb.GID)
		}
		switch {
		case a.Mode().IsRegular():
			ca, err1 := os.ReadFile(p)
			cb, err2 := os.ReadFile(q)
			if err1 != nil || err2 != nil {
				t.Errorf("%s: read: %v %v", rel, err1, err2)
			} else if !bytes.Equal(ca, cb) {
				t.Errorf("%s: content differs (%d vs %d bytes)", rel, len(ca), len(cb))
			}
		case a.Mode()&fs.ModeSymlink != 0:
			la, _ := os.Readlink(p)
			lb, _ := os.Readlink(q)
			if la != lb {
				t.Errorf("%s: link target %q, restored %q", rel, la, lb)
			}
		case a.Mode()&fs.ModeDevice != 0:
			if sa.Rdev != sb.Rdev {
				t.Errorf("%s: rdev %x, restored %x", rel, sa.Rdev, sb.Rdev)
			}
		}
		xa, _ := fsmeta.Xattrs(p)
		xb, _ := fsmeta.Xattrs(q)
		for k, v := range xa {
			if !bytes.Equal(xb[k], v) {
				t.Errorf("%s: xattr %s = %q, restored %q", rel, k, v, xb[k])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing extra, no temporary files left behind.
	err = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		if _, err := os.Lstat(filepath.Join(src, rel)); err != nil {
			t.Errorf("%s: restored but not in the source", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func restoreRun(t *testing.T, r *repo.Repository, snap *repo.Snapshot, opts restore.Options) (*restore.Summary, []restore.Entry) {
	t.Helper()
	var mu sync.Mutex
	var entries []restore.Entry
	opts.OnEntry = func(e restore.Entry) {
		mu.Lock()
		entries = append(entries, e)
		mu.Unlock()
	}
	sum, err := restore.Run(context.Background(), r, snap, opts)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return sum, entries
}

func TestRoundTrip(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	feat := makeTree(t, src)
	snap := backupPaths(t, r, src)

	for _, verify := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "verify"}[verify], func(t *testing.T) {
			target := t.TempDir()
			sum, _ := restoreRun(t, r, snap, restore.Options{Target: target, Verify: verify, Workers: 4})
			if sum.Failed != 0 {
				t.Fatalf("failed entries: %+v", sum.Errors)
			}
			dst := filepath.Join(target, src)
			compareTrees(t, src, dst)

			// Hardlinks share one inode again.
			a, _ := os.Stat(filepath.Join(dst, "h1"))
			for _, other := range []string{"hl/h2", "hl/h3"} {
				b, err := os.Stat(filepath.Join(dst, other))
				if err != nil || !os.SameFile(a, b) {
					t.Errorf("%s is not a hard link to h1 after restore", other)
				}
			}
			if sum.Hardlinks != 2 {
				t.Errorf("summary counts %d hard links, want 2", sum.Hardlinks)
			}
			// The sparse file keeps its holes.
			if feat.sparse {
				fi, err := os.Stat(filepath.Join(dst, "sparse"))
				must(t, err)
				if alloc := fsmeta.FromInfo(fi).Allocated; alloc > sparseSize/2 {
					t.Errorf("sparse file takes %d bytes on disk after restore, want holes", alloc)
				}
			} else {
				t.Log("file system does not keep holes: sparse check skipped")
			}
			if !feat.xattrs {
				t.Log("file system refuses user xattrs: xattr check skipped")
			}
			if !feat.device {
				t.Log("no device nodes here: device check skipped")
			}
		})
	}
}

func TestInclude(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "d", "one"), []byte("one"), 0o644)
	writeFile(t, filepath.Join(src, "d", "sub", "two"), []byte("two"), 0o644)
	writeFile(t, filepath.Join(src, "other"), []byte("other"), 0o644)
	snap := backupPaths(t, r, src)

	t.Run("file", func(t *testing.T) {
		target := t.TempDir()
		restoreRun(t, r, snap, restore.Options{Target: target, Include: filepath.ToSlash(filepath.Join(src, "d", "one"))})
		got, err := os.ReadFile(filepath.Join(target, src, "d", "one"))
		if err != nil || string(got) != "one" {
			t.Fatalf("file not restored: %q %v", got, err)
		}
		for _, absent := range []string{"d/sub", "other"} {
			if _, err := os.Lstat(filepath.Join(target, src, absent)); err == nil {
				t.Errorf("%s restored though not included", absent)
			}
		}
	})
	t.Run("subtree", func(t *testing.T) {
		target := t.TempDir()
		restoreRun(t, r, snap, restore.Options{Target: target, Include: filepath.Join(src, "d")})
		compareTrees(t, filepath.Join(src, "d"), filepath.Join(target, src, "d"))
		if _, err := os.Lstat(filepath.Join(target, src, "other")); err == nil {
			t.Error("other restored though not included")
		}
	})
	t.Run("existing folders above are left alone", func(t *testing.T) {
		target := t.TempDir()
		d := filepath.Join(target, src, "d")
		must(t, os.MkdirAll(d, 0o700))
		mt := time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
		for p := d; p != target; p = filepath.Dir(p) {
			must(t, os.Chtimes(p, mt, mt))
		}
		restoreRun(t, r, snap, restore.Options{Target: target, Include: filepath.Join(src, "d", "one")})
		// d itself changed when the file was added to it; the others not.
		for p := filepath.Dir(d); p != target; p = filepath.Dir(p) {
			fi, err := os.Stat(p)
			must(t, err)
			if !fi.ModTime().Equal(mt) {
				t.Errorf("%s: mtime changed to %v", p, fi.ModTime())
			}
		}
		if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode changed to %v", d, fi.Mode())
		}
		// A whole restore sets the backed-up folder's metadata, not that
		// of the folders above it.
		restoreRun(t, r, snap, restore.Options{Target: target})
		want, _ := os.Stat(src)
		if got, _ := os.Stat(filepath.Join(target, src)); !got.ModTime().Equal(want.ModTime()) {
			t.Errorf("backed-up folder: mtime %v, want %v", got.ModTime(), want.ModTime())
		}
		if got, _ := os.Stat(filepath.Join(target, filepath.Dir(src))); !got.ModTime().Equal(mt) {
			t.Errorf("folder above the backed-up path: mtime changed to %v", got.ModTime())
		}
	})
	t.Run("symlinked folder above is followed", func(t *testing.T) {
		target := t.TempDir()
		real := t.TempDir()
		up := filepath.Join(target, filepath.Dir(src))
		must(t, os.MkdirAll(filepath.Dir(up), 0o755))
		must(t, os.Symlink(real, up))
		restoreRun(t, r, snap, restore.Options{Target: target, Include: filepath.Join(src, "other")})
		if fi, err := os.Lstat(up); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("symlink above the restored path replaced: %v", err)
		}
		if got, err := os.ReadFile(filepath.Join(real, filepath.Base(src), "other")); err != nil || string(got) != "other" {
			t.Errorf("file not restored through the symlink: %q %v", got, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := restore.Run(context.Background(), r, snap, restore.Options{Target: t.TempDir(), Include: filepath.Join(src, "nope")})
		if !errors.Is(err, restore.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})
}

func TestOverwriteRules(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	snapTime := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, n := range []string{"newer", "older", "same", "newer-same"} {
		writeFile(t, filepath.Join(src, n), []byte("snapshot version of "+n), 0o644)
		must(t, os.Chtimes(filepath.Join(src, n), snapTime, snapTime))
	}
	snap := backupPaths(t, r, src)
	target := t.TempDir()
	restoreRun(t, r, snap, restore.Options{Target: target})
	dst := filepath.Join(target, src)

	change := func(name, content string, mt time.Time) {
		p := filepath.Join(dst, name)
		if content != "" {
			must(t, os.WriteFile(p, []byte(content), 0o644))
		}
		must(t, os.Chtimes(p, mt, mt))
	}
	future := time.Now().Add(time.Hour)
	change("newer", "local edit", future)
	change("older", "stale", snapTime.Add(-time.Hour))
	change("newer-same", "", future)

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dst, name))
		must(t, err)
		return string(b)
	}
	want := map[string]restore.Action{
		"newer": restore.ActionSkipNewer, "older": restore.ActionOverwrite,
		"same": restore.ActionSkipIdentical, "newer-same": restore.ActionSkipIdentical,
	}
	actions := func(entries []restore.Entry) map[string]restore.Action {
		m := map[string]restore.Action{}
		for _, e := range entries {
			m[filepath.Base(e.Path)] = e.Action
		}
		return m
	}

	// A dry run says what would happen and changes nothing.
	_, entries := restoreRun(t, r, snap, restore.Options{Target: target, DryRun: true})
	got := actions(entries)
	for n, a := range want {
		if got[n] != a {
			t.Errorf("dry run: %s: %s, want %s", n, got[n], a)
		}
	}
	if read("older") != "stale" {
		t.Fatal("dry run changed a file")
	}

	_, entries = restoreRun(t, r, snap, restore.Options{Target: target})
	got = actions(entries)
	for n, a := range want {
		if got[n] != a {
			t.Errorf("%s: %s, want %s", n, got[n], a)
		}
	}
	if s := read("newer"); s != "local edit" {
		t.Errorf("newer local file was overwritten: %q", s)
	}
	if s := read("older"); s != "snapshot version of older" {
		t.Errorf("older local file was not restored: %q", s)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "newer-same")); !fi.ModTime().Equal(future) {
		t.Errorf("identical file was touched: mtime %v", fi.ModTime())
	}

	_, entries = restoreRun(t, r, snap, restore.Options{Target: target, Overwrite: true})
	if a := actions(entries)["newer"]; a != restore.ActionOverwrite {
		t.Errorf("with Overwrite: newer: %s, want overwrite", a)
	}
	if s := read("newer"); s != "snapshot version of newer" {
		t.Errorf("Overwrite did not restore the newer file: %q", s)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	makeTree(t, src)
	snap := backupPaths(t, r, src)
	target := filepath.Join(t.TempDir(), "target")
	sum, entries := restoreRun(t, r, snap, restore.Options{Target: target, DryRun: true})
	if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("dry run created the target: %v", err)
	}
	if sum.Created == 0 || len(entries) == 0 || sum.Bytes == 0 {
		t.Fatalf("dry run reported nothing: %+v", sum)
	}
	for _, e := range entries {
		if e.Action != restore.ActionCreate && e.Action != restore.ActionSkipUnsupported {
			t.Errorf("%s: %s, want create", e.Path, e.Action)
		}
	}
}

func TestDamagedPackFailsLoudly(t *testing.T) {
	ctx := context.Background()
	r, dir := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "good"), randBytes(10, 3000), 0o644)
	writeFile(t, filepath.Join(src, "victim"), randBytes(11, 3<<20), 0o644)
	snap := backupPaths(t, r, src)

	// Flip one byte inside the victim's first blob.
	tree, err := r.LoadTree(ctx, snap.Tree)
	must(t, err)
	for _, part := range strings.Split(strings.TrimPrefix(filepath.ToSlash(src), "/"), "/") {
		n := tree.Find(part)
		tree, err = r.LoadTree(ctx, *n.Subtree)
		must(t, err)
	}
	victim := tree.Find("victim")
	pb, ok := r.Index().Lookup(victim.Content[0])
	if !ok {
		t.Fatal("blob not indexed")
	}
	var packPath string
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == pb.Pack.String() {
			packPath = p
		}
		return err
	}))
	if packPath == "" {
		t.Fatal("pack file not found")
	}
	b, err := os.ReadFile(packPath)
	must(t, err)
	b[pb.Offset+pb.Length/2] ^= 0x40
	must(t, os.Chmod(packPath, 0o644))
	must(t, os.WriteFile(packPath, b, 0o644))

	target := t.TempDir()
	var failed []restore.Entry
	sum, err := restore.Run(ctx, r, snap, restore.Options{Target: target, OnEntry: func(e restore.Entry) {
		if e.Action == restore.ActionFailed {
			failed = append(failed, e)
		}
	}})
	if err == nil {
		t.Fatal("restore of damaged data succeeded")
	}
	if !errors.Is(err, repo.ErrCorrupt) || !errors.Is(err, restore.ErrIncomplete) {
		t.Errorf("error %v does not wrap ErrCorrupt and ErrIncomplete", err)
	}
	if sum == nil || sum.Failed != 1 || len(failed) != 1 {
		t.Fatalf("want exactly one failed entry, got %+v / %+v", sum, failed)
	}
	msg := failed[0].Err.Error()
	for _, want := range []string{"victim", pb.ID.Short(), pb.Pack.Short()} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not name %s", msg, want)
		}
	}
	dst := filepath.Join(target, src)
	if _, err := os.Lstat(filepath.Join(dst, "victim")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("damaged file left at its name: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dst, "good")); len(got) != 3000 {
		t.Error("the undamaged file was not restored")
	}
	ents, _ := os.ReadDir(dst)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".cairn-restore-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestHardlinkFirstSkipped: when the first path of a hardlinked inode is
// kept because it is newer, the other paths get the snapshot's content on
// their own rather than a link to the newer file.
func TestHardlinkFirstSkipped(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a"), []byte("linked content"), 0o644)
	must(t, os.Link(filepath.Join(src, "a"), filepath.Join(src, "b")))
	snap := backupPaths(t, r, src)
	target := t.TempDir()
	dst := filepath.Join(target, src)
	writeFile(t, filepath.Join(dst, "a"), []byte("newer local"), 0o644)
	must(t, os.Chtimes(filepath.Join(dst, "a"), time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
	restoreRun(t, r, snap, restore.Options{Target: target})
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "newer local" {
		t.Errorf("a overwritten: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "b")); string(b) != "linked content" {
		t.Errorf("b = %q, want the snapshot's content", b)
	}
}

// TestCancelLeavesNoTemporaryFiles: a restore stopped half-way removes the
// temporary files it was writing.
func TestCancelLeavesNoTemporaryFiles(t *testing.T) {
	r, _ := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	for i := range 200 {
		writeFile(t, filepath.Join(src, "d", strings.Repeat("f", 1+i%50)+string(rune('a'+i%26))+string(rune('a'+i/26))), randBytes(uint64(i), 20_000), 0o644)
	}
	writeFile(t, filepath.Join(src, "big"), randBytes(7, 20<<20), 0o644)
	snap := backupPaths(t, r, src)
	target := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	_, err := restore.Run(ctx, r, snap, restore.Options{Target: target, Workers: 2, OnEntry: func(e restore.Entry) {
		if e.Type == repo.NodeFile {
			once.Do(cancel)
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	must(t, filepath.WalkDir(target, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".cairn-restore-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return err
	}))
}

// TestPathBelowSymlinkedFolder: a path given through a symlinked folder
// (/x/link/file, link → real) restores as folders and the file, not as a
// symlink that hides the file.
func TestPathBelowSymlinkedFolder(t *testing.T) {
	r, _ := newRepo(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real", "file"), []byte("below a link"), 0o644)
	must(t, os.Symlink("real", filepath.Join(dir, "link")))
	snap := backupPaths(t, r, filepath.Join(dir, "link", "file"))
	target := t.TempDir()
	sum, _ := restoreRun(t, r, snap, restore.Options{Target: target})
	got, err := os.ReadFile(filepath.Join(target, dir, "link", "file"))
	if err != nil || string(got) != "below a link" || sum.Files != 1 {
		t.Fatalf("file below a symlinked folder: %q, %v (summary %+v)", got, err, sum)
	}
}
