//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVersionsE2E(t *testing.T) {
	c := newE2E(t)
	src := filepath.Join(t.TempDir(), "src")
	f := filepath.Join(src, "notes.txt")
	contents := []string{"version one", "version two, longer", "version two, longer", "v3"}
	var ids []string
	for i, s := range contents {
		writeTestFile(t, f, s)
		mt := time.Date(2020, 1, 1+i, 0, 0, 0, 0, time.UTC)
		if err := os.Chtimes(f, mt, mt); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.backup(src))
	}
	os.Remove(f)
	ids = append(ids, c.backup(src)) // gone in the newest snapshot

	var vs []struct {
		Path       string    `json:"path"`
		Size       uint64    `json:"size"`
		MTime      time.Time `json:"mtime"`
		Hash       string    `json:"hash"`
		SnapshotID string    `json:"snapshot_id"`
		Snapshots  int       `json:"snapshots"`
		Restore    string    `json:"restore"`
	}
	c.json(&vs, "versions", f)
	if len(vs) != 3 {
		t.Fatalf("got %d versions, want 3: %+v", len(vs), vs)
	}
	wantSnap := []string{ids[0], ids[2], ids[3]}
	for i, want := range []string{"version one", "version two, longer", "v3"} {
		v := vs[i]
		if v.Size != uint64(len(want)) || v.SnapshotID != wantSnap[i] || v.Path != f || len(v.Hash) != 64 {
			t.Errorf("version %d: %+v", i+1, v)
		}
		if !strings.Contains(v.Restore, v.SnapshotID[:8]+":"+f) {
			t.Errorf("version %d restore hint %q", i+1, v.Restore)
		}
		// Each version restores from the snapshot it names.
		target := t.TempDir()
		c.ok("restore", v.SnapshotID+":"+f, "--target", target)
		if got := readTestFile(t, filepath.Join(target, f)); got != want {
			t.Errorf("version %d restored %q, want %q", i+1, got, want)
		}
	}
	if vs[1].Snapshots != 2 {
		t.Errorf("version 2 seen in %d snapshots, want 2", vs[1].Snapshots)
	}
	// A relative path is taken from the current folder.
	cwd, _ := os.Getwd()
	defer os.Chdir(cwd)
	if err := os.Chdir(src); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("versions", "notes.txt"); !strings.Contains(out, "3 versions") {
		t.Errorf("versions of a relative path:\n%s", out)
	}
	if _, errOut, code := c.run("versions", filepath.Join(src, "never")); code == 0 || !strings.Contains(errOut, "none of the") {
		t.Errorf("versions of an unknown file: exit %d, %s", code, errOut)
	}
	if _, _, code := c.run("versions", src); code == 0 {
		t.Error("versions of a folder exited 0")
	}
}
