package runner

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/catalog"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store/local"
)

var cheapKDF = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

const password = "pw"

// env is a catalog, a repository and a source folder in one temp dir.
type env struct {
	dir, catPath, repoDir, src string
	cat                        *catalog.Catalog
	repo                       *repo.Repository
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{dir: t.TempDir()}
	e.catPath = filepath.Join(e.dir, "catalog.db")
	e.repoDir = filepath.Join(e.dir, "repo")
	e.src = filepath.Join(e.dir, "src")
	if err := os.MkdirAll(e.src, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := local.Create(e.repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(ctx, st, []byte(password), repo.Options{KDF: &cheapKDF})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	e.open(t)
	return e
}

// open (re)opens the catalog and the repository.
func (e *env) open(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	c, err := catalog.Open(ctx, e.catPath, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := local.Open(e.repoDir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, []byte(password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.cat, e.repo = c, r
	t.Cleanup(func() { c.Close(); r.Close() })
}

func (e *env) runner() *Runner {
	return &Runner{Catalog: e.cat, Repo: e.repo, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (e *env) addSource(t testing.TB, s *catalog.Source) {
	t.Helper()
	if s.Name == "" {
		s.Name = "docs"
	}
	if s.Paths == nil {
		s.Paths = []string{e.src}
	}
	if err := e.cat.AddSource(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
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

func files(t testing.TB, c *catalog.Catalog, runID int64) map[string]catalog.RunFile {
	t.Helper()
	out := map[string]catalog.RunFile{}
	err := c.RunFiles(context.Background(), runID, catalog.FileFilter{}, func(f catalog.RunFile) error {
		out[f.Path] = f
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFirstRunFullThenIncremental(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "a.txt"), []byte("alpha"))
	writeFile(t, filepath.Join(e.src, "sub", "b.bin"), randBytes(300<<10))
	writeFile(t, filepath.Join(e.src, "skip.tmp"), []byte("excluded"))
	writeFile(t, filepath.Join(e.src, "cache", "CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55"))
	writeFile(t, filepath.Join(e.src, "cache", "big"), []byte("cached"))
	if err := os.Symlink("a.txt", filepath.Join(e.src, "link")); err != nil {
		t.Fatal(err)
	}
	e.addSource(t, &catalog.Source{Excludes: []string{"*.tmp"}})
	rn := e.runner()

	r1, err := rn.Run(ctx, "docs", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Kind != catalog.KindFull || r1.Status != catalog.StatusOK || r1.SnapshotID == "" || r1.Finished.IsZero() {
		t.Fatalf("first run %+v", r1)
	}
	if r1.Links != 1 || r1.New < 3 || r1.Failed != 0 {
		t.Fatalf("first run counts %+v", r1.Counts)
	}
	f1 := files(t, e.cat, r1.ID)
	a := f1[filepath.Join(e.src, "a.txt")]
	if a.Result != catalog.ResultNew || a.Hash == "" || a.Size != 5 || a.Type != "file" {
		t.Fatalf("a.txt record %+v", a)
	}
	if f1[filepath.Join(e.src, "link")].Type != "symlink" {
		t.Fatalf("link not recorded: %v", f1)
	}
	for p := range f1 {
		if strings.HasSuffix(p, ".tmp") || strings.Contains(p, "cache") {
			t.Fatalf("excluded path recorded: %s", p)
		}
	}

	// Second run: incremental; only the changed file is read and recorded.
	writeFile(t, filepath.Join(e.src, "a.txt"), []byte("alpha, edited"))
	r2, err := rn.Run(ctx, "docs", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Kind != catalog.KindIncremental || r2.Changed != 1 || r2.Unchanged < 2 {
		t.Fatalf("second run %+v", r2)
	}
	f2 := files(t, e.cat, r2.ID)
	if len(f2) != 1 || f2[filepath.Join(e.src, "a.txt")].Result != catalog.ResultChanged {
		t.Fatalf("second run files %+v", f2)
	}

	// --full re-reads everything.
	r3, err := rn.Run(ctx, "docs", Options{Full: true})
	if err != nil {
		t.Fatal(err)
	}
	if r3.Kind != catalog.KindFull || r3.Unchanged != 0 || r3.New+r3.Changed < 3 {
		t.Fatalf("full run %+v", r3)
	}
}

func TestPreHookFailureFailsRunPostHookStillRuns(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "a"), []byte("x"))
	envOut := filepath.Join(e.dir, "post.env")
	e.addSource(t, &catalog.Source{
		PreHook:  "echo dumping database; echo connection refused >&2; exit 7",
		PostHook: "env | grep ^CAIRN_ | sort > " + envOut,
	})
	run, err := e.runner().Run(ctx, "docs", Options{})
	if err == nil {
		t.Fatal("run with a failing pre hook succeeded")
	}
	if run.Status != catalog.StatusFailed || run.SnapshotID != "" || run.Files != 0 {
		t.Fatalf("run %+v", run)
	}
	if !strings.Contains(run.Error, "pre hook") || !strings.Contains(run.Error, "exit status 7") || !strings.Contains(run.Error, "connection refused") {
		t.Fatalf("error %q lacks the hook's failure", run.Error)
	}
	b, err := os.ReadFile(envOut)
	if err != nil {
		t.Fatalf("post hook did not run: %v", err)
	}
	got := string(b)
	for _, want := range []string{"CAIRN_RUN_STATUS=failed", "CAIRN_SOURCE=docs", fmt.Sprintf("CAIRN_RUN_ID=%d", run.ID), "CAIRN_HOOK=post"} {
		if !strings.Contains(got, want) {
			t.Errorf("post hook env lacks %s:\n%s", want, got)
		}
	}
	snaps, _, _ := e.repo.Snapshots(ctx)
	if len(snaps) != 0 {
		t.Fatalf("%d snapshots after a failed pre hook", len(snaps))
	}
}

func TestHooksSeeRunAndPostHookFailureIsReported(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "a"), []byte("x"))
	marker := filepath.Join(e.dir, "pre.ran")
	e.addSource(t, &catalog.Source{
		PreHook:  `test "$CAIRN_HOOK" = pre && echo "$CAIRN_RUN_KIND" > ` + marker,
		PostHook: `test "$CAIRN_RUN_STATUS" = ok && exit 4`,
	})
	run, err := e.runner().Run(ctx, "docs", Options{})
	if err == nil || !strings.Contains(err.Error(), "post hook") {
		t.Fatalf("post hook failure not returned: %v", err)
	}
	if run.Status != catalog.StatusOK || run.SnapshotID == "" || !strings.Contains(run.Error, "exit status 4") {
		t.Fatalf("run %+v", run)
	}
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != "full" {
		t.Fatalf("pre hook: %q, %v", b, err)
	}
}

func TestFileGrowingWhileRead(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	path := filepath.Join(e.src, "growing.log")
	writeFile(t, path, randBytes(16<<20))
	writeFile(t, filepath.Join(e.src, "still.txt"), []byte("calm"))
	e.addSource(t, &catalog.Source{})
	rn := e.runner()

	// Append to the file for as long as a run lasts. Whether an append
	// lands during the read is up to the scheduler, so a run in which the
	// appender was starved (the file read as "new" or "changed", which is
	// right too) is tried again.
	for attempt := 1; ; attempt++ {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		done := make(chan struct{})
		go func() {
			defer close(done)
			for !stop.Load() {
				f.Write([]byte("more log\n"))
			}
		}()
		run, err := rn.Run(ctx, "docs", Options{})
		stop.Store(true)
		<-done
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if run.Status != catalog.StatusOK || run.Failed != 0 {
			t.Fatalf("run %+v", run)
		}
		rec := files(t, e.cat, run.ID)[path]
		switch rec.Result {
		case catalog.ResultRetried:
			if !strings.Contains(rec.Message, "changed while read") && !strings.Contains(rec.Message, "kept changing") {
				t.Fatalf("message %q", rec.Message)
			}
			if attempt == 1 {
				if still := files(t, e.cat, run.ID)[filepath.Join(e.src, "still.txt")]; still.Result != catalog.ResultNew {
					t.Fatalf("still.txt %+v", still)
				}
			}
			return
		case catalog.ResultNew, catalog.ResultChanged:
			if attempt == 5 {
				t.Fatalf("the file never changed while read in %d runs", attempt)
			}
			t.Logf("attempt %d: no append landed during the read", attempt)
		default:
			t.Fatalf("growing file recorded as %+v", rec)
		}
	}
}

func TestRecordOf(t *testing.T) {
	// The mapping from engine results to result codes.
	for _, tc := range []struct {
		name string
		in   backupResult
		want catalog.Result
		keep bool
	}{
		{"new file", backupResult{typ: "file", status: "new"}, catalog.ResultNew, true},
		{"changed file", backupResult{typ: "file", status: "changed"}, catalog.ResultChanged, true},
		{"unchanged file", backupResult{typ: "file", status: "unchanged"}, "", false},
		{"new dir", backupResult{typ: "dir", status: "new"}, "", false},
		{"failed dir", backupResult{typ: "dir", status: "failed", err: "permission denied"}, catalog.ResultFailed, true},
		{"failed, type unknown", backupResult{status: "failed", err: "lstat: no such file"}, catalog.ResultFailed, true},
		{"retried then consistent", backupResult{typ: "file", status: "new", retried: 1}, catalog.ResultRetried, true},
		{"kept changing", backupResult{typ: "file", status: "changed", retried: 2, err: "file changed while it was read"}, catalog.ResultRetried, true},
		{"new symlink", backupResult{typ: "symlink", status: "new"}, catalog.ResultNew, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rf, keep := RecordOf(tc.in.result())
			if keep != tc.keep || (keep && rf.Result != tc.want) {
				t.Fatalf("RecordOf = %+v, %v; want %s, %v", rf, keep, tc.want, tc.keep)
			}
			if keep && rf.Result == catalog.ResultFailed && rf.Message == "" {
				t.Fatal("failed record without a message")
			}
			if keep && rf.Type == "" {
				t.Fatal("record without a type")
			}
		})
	}
}

// ---- subprocess tests: a run killed mid-way, a run as an unprivileged user

// childConfig is what the re-executed test binary runs.
type childConfig struct {
	Catalog, Repo, Source string
	// BlockAfterCheckpoint: after the first checkpoint is committed, say
	// so on stdout and hang until killed.
	BlockAfterCheckpoint bool
}

const childEnv = "CAIRN_RUNNER_TEST_CHILD"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(childEnv); cfg != "" {
		os.Exit(childMain(cfg))
	}
	os.Exit(m.Run())
}

func childMain(cfgJSON string) int {
	var cfg childConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	c, err := catalog.Open(ctx, cfg.Catalog, catalog.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := local.Open(cfg.Repo)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	r, err := repo.Open(ctx, st, []byte(password), repo.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rn := &Runner{Catalog: c, Repo: r, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
	if cfg.BlockAfterCheckpoint {
		rn.CheckpointInterval = 20 * time.Millisecond
		rn.afterCheckpoint = func(committed int) {
			if committed == 0 {
				return
			}
			fmt.Println("checkpoint")
			select {} // wait for SIGKILL
		}
	}
	run, err := rn.Run(ctx, cfg.Source, Options{})
	if run != nil {
		json.NewEncoder(os.Stdout).Encode(run)
	}
	switch {
	case errors.Is(err, ErrPartial):
		return 3
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func childCmd(t *testing.T, exe string, cfg childConfig) *exec.Cmd {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stderr = &prefixWriter{t: t}
	return cmd
}

type prefixWriter struct{ t *testing.T }

func (w *prefixWriter) Write(p []byte) (int, error) {
	w.t.Logf("child: %s", strings.TrimSpace(string(p)))
	return len(p), nil
}

// backupResult builds engine results for TestRecordOf.
type backupResult struct {
	typ, status, err string
	retried          int
}

func (b backupResult) result() backup.FileResult {
	fr := backup.FileResult{Path: "/src/x", Type: b.typ, Status: backup.Status(b.status), Retried: b.retried}
	if b.err != "" {
		fr.Err = errors.New(b.err)
	}
	return fr
}

func TestRetentionAfterRun(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "a"), []byte("x"))
	policy := catalog.Retention{Last: 2, Daily: 7}
	e.addSource(t, &catalog.Source{Retention: policy})
	type call struct {
		p     catalog.Retention
		host  string
		paths []string
	}
	var calls []call
	rn := e.runner()
	rn.Host = "office"
	rn.Forget = func(ctx context.Context, r *repo.Repository, p catalog.Retention, host string, paths []string) ([]string, error) {
		calls = append(calls, call{p, host, paths})
		return []string{"old"}, nil
	}
	if _, err := rn.Run(ctx, "docs", Options{}); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].p != policy || calls[0].host != "office" || calls[0].paths[0] != e.src {
		t.Fatalf("forget calls %+v", calls)
	}
	// A failed run has no snapshot: retention is not applied.
	src, _ := e.cat.Source(ctx, "docs")
	src.PreHook = "false"
	e.cat.UpdateSource(ctx, src)
	if _, err := rn.Run(ctx, "docs", Options{}); err == nil {
		t.Fatal("pre hook false did not fail the run")
	}
	if len(calls) != 1 {
		t.Fatalf("retention applied after a failed run")
	}
	// A retention error is reported but the run stays ok.
	src.PreHook = ""
	e.cat.UpdateSource(ctx, src)
	rn.Forget = func(context.Context, *repo.Repository, catalog.Retention, string, []string) ([]string, error) {
		return nil, errors.New("repository locked")
	}
	run, err := rn.Run(ctx, "docs", Options{})
	if err == nil || run.Status != catalog.StatusOK || !strings.Contains(run.Error, "retention: repository locked") {
		t.Fatalf("run %+v, %v", run, err)
	}
}

// BenchmarkIncrementalOverhead measures an incremental run over unchanged
// files through the runner (catalog records, checkpoints, run bookkeeping)
// against the same backup.Run without a catalog, and reports the ratio.
// The corpus has 100,000 files; set CAIRN_BENCH_FILES for another size.
func BenchmarkIncrementalOverhead(b *testing.B) {
	nFiles := 100000
	if s := os.Getenv("CAIRN_BENCH_FILES"); s != "" {
		nFiles, _ = strconv.Atoi(s)
	}
	ctx := context.Background()
	e := newEnv(b)
	for i := range nFiles {
		p := filepath.Join(e.src, fmt.Sprintf("d%03d", i%500), fmt.Sprintf("f%06d", i))
		if i%500 == 0 || i < 500 {
			os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, []byte(strconv.Itoa(i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	e.addSource(b, &catalog.Source{})
	rn := e.runner()
	if _, err := rn.Run(ctx, "docs", Options{}); err != nil { // the full first run
		b.Fatal(err)
	}
	withCatalog := func() time.Duration {
		t0 := time.Now()
		run, err := rn.Run(ctx, "docs", Options{})
		d := time.Since(t0)
		if err != nil || run.Unchanged != int64(nFiles) {
			b.Fatalf("incremental run %+v, %v", run, err)
		}
		return d
	}
	bare := func() time.Duration {
		t0 := time.Now()
		sum, err := backup.Run(ctx, e.repo, backup.Options{Paths: []string{e.src}, ExcludeCaches: true})
		d := time.Since(t0)
		if err != nil || sum.Unchanged != nFiles {
			b.Fatalf("bare run %+v, %v", sum, err)
		}
		return d
	}
	bare() // warm the page cache
	var with, without time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order so neither side always runs on a warmer cache.
		if i%2 == 0 {
			with += withCatalog()
			without += bare()
		} else {
			without += bare()
			with += withCatalog()
		}
	}
	b.ReportMetric(with.Seconds()/float64(b.N), "s/run-with-catalog")
	b.ReportMetric(without.Seconds()/float64(b.N), "s/run-without")
	b.ReportMetric(with.Seconds()/without.Seconds(), "ratio")
}

func TestCancelledRunIsInterruptedThenResumed(t *testing.T) {
	e := newEnv(t)
	for i := range 40 {
		writeFile(t, filepath.Join(e.src, fmt.Sprintf("f%03d", i)), randBytes(512<<10))
	}
	statusFile := filepath.Join(e.dir, "status")
	e.addSource(t, &catalog.Source{Schedule: "daily 02:30", PostHook: `echo "$CAIRN_RUN_STATUS" > ` + statusFile})
	ctx, cancel := context.WithCancel(context.Background())
	rn := e.runner()
	rn.CheckpointInterval = 20 * time.Millisecond
	rn.afterCheckpoint = func(committed int) {
		if committed > 0 {
			cancel() // like Ctrl-C in the middle of the run
		}
	}
	run, err := rn.Run(ctx, "docs", Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
	if run.Status != catalog.StatusInterrupted || run.SnapshotID != "" {
		t.Fatalf("cancelled run %+v", run)
	}
	if b, _ := os.ReadFile(statusFile); strings.TrimSpace(string(b)) != "interrupted" {
		t.Fatalf("post hook saw status %q", b)
	}
	if n := len(files(t, e.cat, run.ID)); n == 0 {
		t.Fatal("nothing recorded before the cancel")
	}
	// The scheduler is told to resume it at once.
	entries, err := rn.Entries(context.Background())
	if err != nil || len(entries) != 1 || !entries[0].Resume {
		t.Fatalf("entries %+v, %v", entries, err)
	}
	// A new process resumes it (the repository keeps a cancelled upload's
	// error for its lifetime, so it is reopened as after Ctrl-C).
	e.repo.Close()
	e.cat.Close()
	e.open(t)
	rn = e.runner()
	again, err := rn.Run(context.Background(), "docs", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if again.ResumedFrom != run.ID || again.Kind != catalog.KindFull || again.Status != catalog.StatusOK || again.Files != 40 {
		t.Fatalf("resumed run %+v", again)
	}
	if entries, _ := rn.Entries(context.Background()); entries[0].Resume {
		t.Fatal("still marked for resume after the resumed run")
	}
}

func TestRetentionKeepLastWithRealForget(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.addSource(t, &catalog.Source{Retention: catalog.Retention{Last: 2}})
	rn := e.runner()
	var ids []string
	for i := range 4 {
		writeFile(t, filepath.Join(e.src, "a"), []byte(strconv.Itoa(i)))
		run, err := rn.Run(ctx, "docs", Options{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, run.SnapshotID)
	}
	snaps, _, err := e.repo.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, s := range snaps {
		left = append(left, s.ID.String())
	}
	if len(left) != 2 || !slices.Contains(left, ids[2]) || !slices.Contains(left, ids[3]) {
		t.Fatalf("snapshots left %v; want the last two of %v", left, ids)
	}
}

func TestReporterSpillsAndCommitsInOrder(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.addSource(t, &catalog.Source{})
	run, err := e.cat.BeginRun(ctx, "docs", catalog.BeginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := &reporter{ctx: ctx, cat: e.cat, runID: run.ID, spillAt: 10}
	var want []string
	for i := range 25 {
		p := fmt.Sprintf("/src/f%02d", i)
		want = append(want, p)
		rep.File(backup.FileResult{Path: p, Type: "file", Size: 1, Status: backup.StatusNew})
		rep.File(backup.FileResult{Path: p + ".same", Type: "file", Size: 1, Status: backup.StatusUnchanged})
	}
	if n := len(files(t, e.cat, run.ID)); n != 0 {
		t.Fatalf("%d records visible before the checkpoint", n)
	}
	rep.Checkpoint()
	if err := rep.error(); err != nil {
		t.Fatal(err)
	}
	var got []string
	e.cat.RunFiles(ctx, run.ID, catalog.FileFilter{}, func(f catalog.RunFile) error { got = append(got, f.Path); return nil })
	if !slices.Equal(got, want) {
		t.Fatalf("committed %v, want %v", got, want)
	}
	r, _ := e.cat.GetRun(ctx, run.ID)
	if r.Files != 50 || r.New != 25 || r.Unchanged != 25 {
		t.Fatalf("progress counts %+v", r.Counts)
	}
}
