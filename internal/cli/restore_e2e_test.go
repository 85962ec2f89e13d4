//go:build unix

package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// e2eBinary is the cairn binary built once by TestMain for the tests that
// run the real program.
var e2eBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	e2eBinary = filepath.Join(dir, "cairn")
	out, err := exec.Command("go", "build", "-o", e2eBinary, "github.com/cairn-backup/cairn/cmd/cairn").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build cairn: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// e2e runs the built binary against one repository.
type e2e struct {
	t    *testing.T
	repo string
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	c := &e2e{t: t, repo: filepath.Join(t.TempDir(), "repo")}
	c.ok("init")
	return c
}

// run returns stdout, stderr and the exit code.
func (c *e2e) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(e2eBinary, append([]string{"--repo", c.repo}, args...)...)
	cmd.Env = append(os.Environ(), "CAIRN_PASSWORD=e2e passphrase", "CAIRN_HOME="+filepath.Join(filepath.Dir(c.repo), "home"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		c.t.Fatalf("run cairn: %v", err)
	}
	return out.String(), errOut.String(), code
}

func (c *e2e) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("cairn %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func (c *e2e) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("cairn %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// backup stores paths and returns the snapshot ID.
func (c *e2e) backup(paths ...string) string {
	c.t.Helper()
	var sum struct {
		SnapshotID string `json:"snapshot_id"`
	}
	c.json(&sum, append([]string{"backup"}, paths...)...)
	if sum.SnapshotID == "" {
		c.t.Fatal("backup printed no snapshot ID")
	}
	return sum.SnapshotID
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRestoreE2E(t *testing.T) {
	c := newE2E(t)
	src := filepath.Join(t.TempDir(), "src")
	writeTestFile(t, filepath.Join(src, "docs", "a.txt"), "alpha")
	writeTestFile(t, filepath.Join(src, "docs", "b.txt"), "beta")
	writeTestFile(t, filepath.Join(src, "top"), "top level")
	if err := os.Symlink("docs/a.txt", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	id := c.backup(src)

	t.Run("whole snapshot", func(t *testing.T) {
		target := t.TempDir()
		var sum struct {
			SnapshotID string `json:"snapshot_id"`
			Files      int    `json:"files"`
			Symlinks   int    `json:"symlinks"`
			Created    int    `json:"created"`
			Failed     int    `json:"failed"`
			Bytes      int64  `json:"bytes"`
		}
		c.json(&sum, "restore", "latest", "--target", target, "--verify")
		if sum.SnapshotID != id || sum.Files != 3 || sum.Symlinks != 1 || sum.Failed != 0 || sum.Bytes != int64(len("alphabetatop level")) {
			t.Errorf("summary %+v", sum)
		}
		dst := filepath.Join(target, src)
		if got := readTestFile(t, filepath.Join(dst, "docs", "b.txt")); got != "beta" {
			t.Errorf("b.txt = %q", got)
		}
		if l, err := os.Readlink(filepath.Join(dst, "link")); err != nil || l != "docs/a.txt" {
			t.Errorf("link = %q, %v", l, err)
		}
		// Text output for people.
		out := c.ok("restore", id[:8], "--target", t.TempDir())
		if !strings.Contains(out, "restored to") || !strings.Contains(out, "3 files") {
			t.Errorf("text summary:\n%s", out)
		}
	})

	t.Run("one file by prefix and path", func(t *testing.T) {
		target := t.TempDir()
		c.ok("restore", id[:10]+":"+filepath.Join(src, "docs", "a.txt"), "--target", target)
		if got := readTestFile(t, filepath.Join(target, src, "docs", "a.txt")); got != "alpha" {
			t.Errorf("a.txt = %q", got)
		}
		for _, absent := range []string{"docs/b.txt", "top"} {
			if _, err := os.Lstat(filepath.Join(target, src, absent)); err == nil {
				t.Errorf("%s restored though not asked for", absent)
			}
		}
	})

	t.Run("dry run writes nothing", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "t")
		out := c.ok("restore", "latest", "--target", target, "--dry-run")
		if !strings.Contains(out, "create") || !strings.Contains(out, filepath.Join(target, src, "top")) {
			t.Errorf("dry run output:\n%s", out)
		}
		if _, err := os.Lstat(target); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("dry run created the target: %v", err)
		}
	})

	t.Run("newer files are kept unless --overwrite", func(t *testing.T) {
		target := t.TempDir()
		c.ok("restore", "latest", "--target", target)
		p := filepath.Join(target, src, "top")
		writeTestFile(t, p, "edited later")
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
		var sum struct {
			SkippedNewer     int `json:"skipped_newer"`
			SkippedIdentical int `json:"skipped_identical"`
		}
		c.json(&sum, "restore", "latest", "--target", target)
		if got := readTestFile(t, p); got != "edited later" {
			t.Errorf("newer file overwritten: %q", got)
		}
		if sum.SkippedNewer != 1 || sum.SkippedIdentical != 3 {
			t.Errorf("summary %+v, want 1 newer and 3 identical entries (2 files, 1 symlink) skipped", sum)
		}
		c.ok("restore", "latest", "--target", target, "--overwrite")
		if got := readTestFile(t, p); got != "top level" {
			t.Errorf("--overwrite left %q", got)
		}
	})

	t.Run("bad arguments", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{"restore", "latest:" + filepath.Join(src, "nope"), "--target", t.TempDir()}, 16},
			{[]string{"restore", "ffffffff", "--target", t.TempDir()}, 16},
			{[]string{"restore", "latest"}, 2},
			{[]string{"restore", ":/x", "--target", t.TempDir()}, 2},
		} {
			args := tc.args
			_, errOut, code := c.run(args...)
			if code != tc.code {
				t.Errorf("cairn %s: exit %d, want %d", strings.Join(args, " "), code, tc.code)
			}
			if lines := strings.Count(strings.TrimSpace(errOut), "\n") + 1; !strings.HasPrefix(errOut, "cairn: error:") || lines > 2 {
				t.Errorf("cairn %s: stderr %q, want a one-line error (and a hint)", strings.Join(args, " "), errOut)
			}
		}
	})
}

// TestRestoreDamagedE2E: a flipped byte in a pack makes restore exit
// non-zero, name the file, and leave nothing at its name.
func TestRestoreDamagedE2E(t *testing.T) {
	c := newE2E(t)
	src := filepath.Join(t.TempDir(), "src")
	// Random bytes do not compress: the file's pack is the only large one.
	random := make([]byte, 300_000)
	rand.Read(random)
	writeTestFile(t, filepath.Join(src, "victim"), string(random))
	c.backup(src)
	var packs []string
	filepath.WalkDir(filepath.Join(c.repo, "data"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() && info.Size() > 200_000 {
			packs = append(packs, p)
		}
		return nil
	})
	if len(packs) != 1 {
		t.Fatalf("found %d large packs, want the one holding the file", len(packs))
	}
	// Damage the pack's first bytes: the blob ciphertexts come first.
	for _, p := range packs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[20] ^= 1
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	target := t.TempDir()
	_, errOut, code := c.run("restore", "latest:"+filepath.Join(src, "victim"), "--target", target)
	if code == 0 {
		t.Fatal("restore of damaged data exited 0")
	}
	if !strings.Contains(errOut, "victim") || !strings.Contains(errOut, "damaged") {
		t.Errorf("stderr does not name the file and the damage:\n%s", errOut)
	}
	if _, err := os.Lstat(filepath.Join(target, src, "victim")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("damaged file written at its name: %v", err)
	}
}
