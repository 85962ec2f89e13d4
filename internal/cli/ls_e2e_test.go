//go:build unix

package cli

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLsE2E(t *testing.T) {
	c := newE2E(t)
	src := filepath.Join(t.TempDir(), "src")
	writeTestFile(t, filepath.Join(src, "d", "file.txt"), "twelve bytes")
	writeTestFile(t, filepath.Join(src, "bad\xffname"), "x")
	if err := os.Chmod(filepath.Join(src, "d", "file.txt"), 0o640); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2010, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "d", "file.txt"), mt, mt); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d/file.txt", filepath.Join(src, "ln")); err != nil {
		t.Fatal(err)
	}
	id := c.backup(src)

	type entry struct {
		Path       string    `json:"path"`
		PathB64    string    `json:"path_b64"`
		Type       string    `json:"type"`
		Size       uint64    `json:"size"`
		Mode       string    `json:"mode"`
		MTime      time.Time `json:"mtime"`
		LinkTarget string    `json:"link_target"`
	}
	var all []entry
	c.json(&all, "ls", "latest")
	byPath := map[string]entry{}
	for _, e := range all {
		p := e.Path
		if e.PathB64 != "" {
			b, _ := base64.StdEncoding.DecodeString(e.PathB64)
			p = string(b)
		}
		byPath[p] = e
	}
	f, ok := byPath[filepath.Join(src, "d", "file.txt")]
	if !ok || f.Type != "file" || f.Size != 12 || f.Mode != "-rw-r-----" || !f.MTime.Equal(mt) {
		t.Errorf("file entry %+v (found %v)", f, ok)
	}
	if d := byPath[filepath.Join(src, "d")]; d.Type != "dir" || !strings.HasPrefix(d.Mode, "d") {
		t.Errorf("folder entry %+v", d)
	}
	if l := byPath[filepath.Join(src, "ln")]; l.Type != "symlink" || l.LinkTarget != "d/file.txt" {
		t.Errorf("symlink entry %+v", l)
	}
	if _, ok := byPath[filepath.Join(src, "bad\xffname")]; !ok {
		t.Error("a name that is not UTF-8 is missing or mangled")
	}
	// The folders above the backed-up path are listed too.
	if _, ok := byPath[filepath.Dir(src)]; !ok {
		t.Errorf("parent folder %s not listed", filepath.Dir(src))
	}

	// A path limits the listing to that subtree.
	var sub []entry
	c.json(&sub, "ls", id[:8], filepath.Join(src, "d"))
	if len(sub) != 2 || sub[0].Path != filepath.Join(src, "d") || sub[1].Path != filepath.Join(src, "d", "file.txt") {
		t.Errorf("ls of a folder: %+v", sub)
	}
	// Text, long form.
	out := c.ok("ls", "-l", "latest", filepath.Join(src, "d", "file.txt"))
	if !strings.Contains(out, "-rw-r-----") || !strings.Contains(out, "12") || !strings.Contains(out, "file.txt") {
		t.Errorf("ls -l:\n%s", out)
	}
	if _, errOut, code := c.run("ls", "latest", filepath.Join(src, "missing")); code == 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("ls of a missing path: exit %d, %s", code, errOut)
	}
	// An empty array, not null, for an empty folder.
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.backup(src)
	out = c.ok("ls", "latest", filepath.Join(src, "empty"), "--json")
	if !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("ls --json of an empty folder: %q", out)
	}
}
