//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestDiffE2E(t *testing.T) {
	c := newE2E(t)
	src := filepath.Join(t.TempDir(), "src")
	writeTestFile(t, filepath.Join(src, "same", "x"), "unchanged")
	writeTestFile(t, filepath.Join(src, "edit"), "before")
	writeTestFile(t, filepath.Join(src, "gone", "y"), "removed later")
	writeTestFile(t, filepath.Join(src, "typechange"), "a file first")
	s1 := c.backup(src)

	writeTestFile(t, filepath.Join(src, "edit"), "after, longer")
	if err := os.RemoveAll(filepath.Join(src, "gone")); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(src, "new", "z"), "added")
	if err := os.Remove(filepath.Join(src, "typechange")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("edit", filepath.Join(src, "typechange")); err != nil {
		t.Fatal(err)
	}
	s2 := c.backup(src)

	var d struct {
		From, To string
		Changes  []struct {
			Path   string  `json:"path"`
			Change string  `json:"change"`
			Type   string  `json:"type"`
			Before *uint64 `json:"size_before"`
			After  *uint64 `json:"size_after"`
		} `json:"changes"`
		Added, Removed, Modified int
	}
	c.json(&d, "diff", s1[:8], s2)
	var got []string
	for _, ch := range d.Changes {
		rel := strings.TrimPrefix(ch.Path, src+"/")
		got = append(got, ch.Change+" "+rel)
		if rel == "edit" && (ch.Before == nil || ch.After == nil || *ch.Before != 6 || *ch.After != 13) {
			t.Errorf("edit: sizes %v → %v", ch.Before, ch.After)
		}
	}
	sort.Strings(got)
	want := []string{
		"added new", "added new/z", "added typechange",
		"modified edit",
		"removed gone", "removed gone/y", "removed typechange",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if d.Added != 3 || d.Removed != 3 || d.Modified != 1 || d.From != s1 || d.To != s2 {
		t.Errorf("counts or IDs: %+v", d)
	}
	// No changes between a snapshot and itself; text output.
	out := c.ok("diff", s2, "latest")
	if !strings.Contains(out, "0 added, 0 removed, 0 modified") {
		t.Errorf("diff of a snapshot with itself:\n%s", out)
	}
	out = c.ok("diff", s1, s2)
	for _, line := range []string{"+ " + filepath.Join(src, "new") + "/", "- " + filepath.Join(src, "gone", "y"), "M " + filepath.Join(src, "edit")} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("text diff lacks %q:\n%s", line, out)
		}
	}
}
