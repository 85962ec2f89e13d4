package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/catalog"
)

// sourceCLI runs cairn commands in-process against one home.
type sourceCLI struct {
	t    *testing.T
	home string
}

func (c *sourceCLI) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	g := &Globals{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string {
		switch k {
		case "CAIRN_HOME":
			return c.home
		case "CAIRN_PASSWORD":
			return "correct horse"
		}
		return ""
	}}
	root := NewRoot(g)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func (c *sourceCLI) ok(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("cairn %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestSourceRunHistoryCommands(t *testing.T) {
	dir := t.TempDir()
	c := &sourceCLI{t: t, home: filepath.Join(dir, "home")}
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("beta"), 0o644)
	os.WriteFile(filepath.Join(src, "junk.tmp"), []byte("junk"), 0o644)

	// Listings before anything exists are empty JSON arrays.
	if out := c.ok("source", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty source list: %q", out)
	}
	if out := c.ok("history", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("empty history: %q", out)
	}

	// Bad settings are usage errors, one line each.
	for _, args := range [][]string{
		{"source", "add", "docs", src, "--schedule", "daily 25:00"},
		{"source", "add", "docs", src, "--redundancy", "0+2"},
		{"source", "add", "docs", src, "--window", "22:00"},
		{"source", "add", "docs", src, "--limit-up", "fast"},
		{"source", "add", "docs", src, "--keep-within", "forever"},
		{"source", "add", "docs", filepath.Join(dir, "missing")},
		{"source", "add", "123", src},
	} {
		_, _, err := c.run(args...)
		if !errors.Is(err, ErrUsage) || strings.Contains(Message(err), "\n") {
			t.Errorf("cairn %s: %v, want a one-line usage error", strings.Join(args, " "), err)
		}
	}

	c.ok("source", "add", "docs", src, "--schedule", "weekdays 18:00", "--exclude", "*.tmp",
		"--keep-daily", "7", "--keep-within", "2w", "--redundancy", "4+2", "--window", "22:00-06:00", "--limit-up", "1MiB")
	if _, _, err := c.run("source", "add", "docs", src); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate add: %v", err)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(c.ok("source", "list", "--json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("source list --json: %v %v", list, err)
	}
	s := list[0]
	if s["name"] != "docs" || s["schedule"] != "weekdays 18:00" || s["redundancy"] != "4+2" || s["limit_up"] != float64(1<<20) ||
		s["retention"].(map[string]any)["within"] != "336h0m0s" || s["next"] == nil {
		t.Fatalf("source JSON %v", s)
	}
	c.ok("source", "edit", "docs", "--schedule", "daily 02:30", "--pre", "true")
	if out := c.ok("source", "show", "docs"); !strings.Contains(out, "daily 02:30") || !strings.Contains(out, "pre hook:") {
		t.Fatalf("show after edit:\n%s", out)
	}
	if out := c.ok("source", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "daily 02:30") {
		t.Fatalf("source list:\n%s", out)
	}

	// Two runs: the first full, the second incremental with one change.
	out := c.ok("run", "docs")
	if !strings.Contains(out, "ok (full)") {
		t.Fatalf("first run output:\n%s", out)
	}
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha, edited"), 0o644)
	var run map[string]any
	if err := json.Unmarshal([]byte(c.ok("run", "docs", "--json")), &run); err != nil {
		t.Fatal(err)
	}
	if run["kind"] != "incremental" || run["status"] != "ok" || run["changed"] != float64(1) {
		t.Fatalf("second run %v", run)
	}

	var runs []map[string]any
	if err := json.Unmarshal([]byte(c.ok("history", "docs", "--json")), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("history --json: %v %v", runs, err)
	}
	if runs[0]["kind"] != "incremental" || runs[1]["kind"] != "full" || runs[1]["new"] != float64(2) {
		t.Fatalf("history %v", runs)
	}
	var files []map[string]any
	if err := json.Unmarshal([]byte(c.ok("history", "1", "--files", "--json")), &files); err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Fatalf("files of run 1: %v", files)
	}
	for _, f := range files {
		if _, ok := f["message"]; !ok || f["result"] != "new" || f["path"] == nil || strings.HasSuffix(f["path"].(string), ".tmp") {
			t.Fatalf("file %v", f)
		}
	}
	if out := c.ok("history", "1", "--files", "--failed", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("no failed files: %q", out)
	}
	if out := c.ok("history"); !strings.Contains(out, "incremental") || !strings.Contains(out, "RUN") {
		t.Fatalf("history table:\n%s", out)
	}
	if _, _, err := c.run("history", "docs", "--files"); !errors.Is(err, ErrUsage) {
		t.Fatalf("--files without a run: %v", err)
	}
	if _, _, err := c.run("run", "nope"); err == nil || !strings.Contains(err.Error(), "no source called nope") {
		t.Fatalf("run of an unknown source: %v", err)
	}

	// Removing the source keeps its history.
	c.ok("source", "remove", "docs")
	if err := json.Unmarshal([]byte(c.ok("history", "docs", "--json")), &runs); err != nil || len(runs) != 2 {
		t.Fatalf("history after remove: %v %v", runs, err)
	}
}

// TestRunExitCode3 runs the real binary on a source with an unreadable
// file (as nobody when the test runs as root) and expects exit code 3 and
// the file in history --failed.
func TestRunExitCode3(t *testing.T) {
	if testing.Short() || runtime.GOOS == "windows" {
		t.Skip("builds the binary; unix only")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", exe, "github.com/cairn-backup/cairn/cmd/cairn")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build cairn: %v\n%s", err, out)
	}
	home := filepath.Join(dir, "home")
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "ok.txt"), []byte("fine"), 0o644)
	secret := filepath.Join(src, "secret")
	os.WriteFile(secret, []byte("no"), 0o644)
	os.Chmod(secret, 0)
	cairn := func(args ...string) *exec.Cmd {
		cmd := exec.Command(exe, args...)
		cmd.Env = append(os.Environ(), "CAIRN_HOME="+home, "CAIRN_PASSWORD=pw")
		asNobody(t, cmd, dir)
		return cmd
	}
	if out, err := cairn("source", "add", "docs", src).CombinedOutput(); err != nil {
		t.Fatalf("source add: %v\n%s", err, out)
	}
	var stderr bytes.Buffer
	cmd := cairn("run", "docs")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("cairn run: %v, want exit code 3\n%s\n%s", err, out, stderr.String())
	}
	if !strings.Contains(stderr.String(), secret) || !strings.Contains(string(out), "partial") {
		t.Fatalf("run output:\n%s\n%s", out, stderr.String())
	}
	out, err = cairn("history", "1", "--files", "--failed", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var files []map[string]any
	if err := json.Unmarshal(out, &files); err != nil || len(files) != 1 || files[0]["path"] != secret ||
		files[0]["result"] != "failed" || !strings.Contains(files[0]["message"].(string), "permission denied") {
		t.Fatalf("failed files %s, %v", out, err)
	}
}

func TestScheduledRunNeedsPassphraseAndRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := &sourceCLI{t: t, home: filepath.Join(dir, "home")}
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a"), []byte("x"), 0o644)
	c.ok("source", "add", "docs", src, "--schedule", "hourly")
	c.ok("run", "docs") // creates the repository

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	g := &Globals{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
		if k == "CAIRN_HOME" {
			return c.home
		}
		return ""
	}}
	h, _ := g.home()
	cat, err := catalog.Open(ctx, h.CatalogPath(), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if err := g.scheduledRun(ctx, cat, "docs", log); !errors.Is(err, errNoDaemonPassphrase) {
		t.Fatalf("without a passphrase: %v", err)
	}
	g.Getenv = func(k string) string {
		switch k {
		case "CAIRN_HOME":
			return c.home
		case "CAIRN_PASSWORD":
			return "correct horse"
		}
		return ""
	}
	if err := g.scheduledRun(ctx, cat, "docs", log); err != nil {
		t.Fatal(err)
	}
	runs, _ := cat.Runs(ctx, catalog.RunFilter{Source: "docs"})
	if len(runs) != 2 || runs[0].Status != catalog.StatusOK || runs[0].Kind != catalog.KindIncremental {
		t.Fatalf("runs %+v", runs)
	}
}
