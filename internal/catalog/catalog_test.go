package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func openTest(t testing.TB) (*Catalog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func addSource(t testing.TB, c *Catalog, name string) *Source {
	t.Helper()
	s := &Source{Name: name, Paths: []string{"/data/" + name}}
	if err := c.AddSource(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	v, err := c.SchemaVersion(ctx)
	if err != nil || v != schemaVersion {
		t.Fatalf("version %d, %v; want %d", v, err, schemaVersion)
	}
	addSource(t, c, "docs")
	c.Close()
	c2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Source(ctx, "docs"); err != nil {
		t.Fatalf("source lost on reopen: %v", err)
	}
	var mode string
	if err := c2.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q, %v", mode, err)
	}
	var fk int
	if err := c2.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys %d, %v", fk, err)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	if _, err := c.db.ExecContext(ctx, `UPDATE schema_version SET version = ?`, schemaVersion+1); err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, err := Open(ctx, path, Options{})
	if !errors.Is(err, ErrTooNew) {
		t.Fatalf("got %v, want ErrTooNew", err)
	}
}

func TestSourceCRUD(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s := &Source{
		Name: "home", Paths: []string{"/home/a", "/home/b"}, Excludes: []string{"*.tmp"},
		Schedule: "daily 02:30", PreHook: "pg_dump", PostHook: "echo done",
		Retention:  Retention{Last: 3, Daily: 7, Within: 48 * time.Hour},
		Redundancy: "4+2", Window: "22:00-06:00", LimitUp: 1 << 20, LimitDown: 2 << 20,
	}
	if err := c.AddSource(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := c.AddSource(ctx, &Source{Name: "home", Paths: []string{"/x"}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: got %v, want ErrExists", err)
	}
	got, err := c.Source(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, s)
	}
	got.Schedule = "hourly"
	got.Name = "home2"
	if err := c.UpdateSource(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Source(ctx, "home"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old name after rename: %v", err)
	}
	addSource(t, c, "alpha")
	all, err := c.Sources(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "alpha" || all[1].Schedule != "hourly" {
		t.Fatalf("sources %+v, %v", all, err)
	}
	if err := c.RemoveSource(ctx, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSource(ctx, "alpha"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"docs", true}, {"my-home_2.x", true}, {"", false}, {"-x", false}, {"a b", false}, {"123", false}, {"a/b", false}} {
		if err := ValidName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestRunKindsAndLifecycle(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	addSource(t, c, "docs")

	r1, err := c.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Kind != KindFull {
		t.Fatalf("first run kind %s, want full", r1.Kind)
	}
	if _, err := c.BeginRun(ctx, "docs", BeginOptions{}); !errors.Is(err, ErrRunning) {
		t.Fatalf("second concurrent run: %v, want ErrRunning", err)
	}
	// A failed first run leaves the next one full.
	if err := c.FinishRun(ctx, r1.ID, Finish{Status: StatusFailed, Error: "pre hook: exit status 1"}); err != nil {
		t.Fatal(err)
	}
	r2, err := c.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil || r2.Kind != KindFull {
		t.Fatalf("after failed run: %+v, %v", r2, err)
	}
	counts := Counts{Files: 10, Dirs: 2, Bytes: 100, New: 9, Failed: 1}
	if err := c.FinishRun(ctx, r2.ID, Finish{Status: StatusPartial, Counts: counts, SnapshotID: "abc"}); err != nil {
		t.Fatal(err)
	}
	r3, err := c.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil || r3.Kind != KindIncremental || r3.ResumedFrom != 0 {
		t.Fatalf("after partial run: %+v, %v", r3, err)
	}
	c.FinishRun(ctx, r3.ID, Finish{Status: StatusOK})
	r4, err := c.BeginRun(ctx, "docs", BeginOptions{Full: true})
	if err != nil || r4.Kind != KindFull {
		t.Fatalf("--full: %+v, %v", r4, err)
	}
	c.FinishRun(ctx, r4.ID, Finish{Status: StatusOK})

	got, err := c.GetRun(ctx, r2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != StatusPartial || got.Counts != counts || got.SnapshotID != "abc" || got.Finished.IsZero() {
		t.Fatalf("run 2 = %+v", got)
	}
	runs, err := c.Runs(ctx, RunFilter{Source: "docs"})
	if err != nil || len(runs) != 4 || runs[0].ID != r4.ID {
		t.Fatalf("runs newest first: %v, %v", runs, err)
	}
	if _, err := c.BeginRun(ctx, "nope", BeginOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown source: %v", err)
	}
	// History outlives the source.
	if err := c.RemoveSource(ctx, "docs"); err != nil {
		t.Fatal(err)
	}
	runs, err = c.Runs(ctx, RunFilter{Source: "docs"})
	if err != nil || len(runs) != 4 {
		t.Fatalf("runs after source removal: %d, %v", len(runs), err)
	}
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.ProcessState.Pid()
}

func TestCrashedRunIsInterruptedAndResumed(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	addSource(t, c, "docs")
	r1, err := c.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(ctx, r1.ID, []RunFile{{Path: "/data/a", Type: "file", Result: ResultNew}}, &Counts{Files: 1, New: 1}); err != nil {
		t.Fatal(err)
	}
	// Reopening from this live process leaves the run alone.
	if ids, err := c.MarkInterrupted(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("live run marked: %v, %v", ids, err)
	}
	// Pretend the run belongs to a process that died.
	if _, err := c.db.ExecContext(ctx, `UPDATE runs SET owner_pid = ? WHERE id = ?`, deadPID(t), r1.ID); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	got, err := c2.GetRun(ctx, r1.ID)
	if err != nil || got.Status != StatusInterrupted || got.Files != 1 {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	r2, err := c2.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.ResumedFrom != r1.ID || r2.Kind != KindFull {
		t.Fatalf("resumed run %+v; want resumed from %d, full", r2, r1.ID)
	}
	// Only the latest interrupted run is resumed, and only once.
	c2.FinishRun(ctx, r2.ID, Finish{Status: StatusOK})
	r3, _ := c2.BeginRun(ctx, "docs", BeginOptions{})
	if r3.ResumedFrom != 0 || r3.Kind != KindIncremental {
		t.Fatalf("third run %+v", r3)
	}
}

func TestCheckpointAndRunFiles(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	addSource(t, c, "docs")
	r, _ := c.BeginRun(ctx, "docs", BeginOptions{})
	var want []RunFile
	for i := range 450 { // more than two full batches and a tail
		res := ResultNew
		msg := ""
		switch i % 50 {
		case 7:
			res, msg = ResultFailed, "open: permission denied"
		case 8:
			res, msg = ResultRetried, "re-read 2 times"
		}
		want = append(want, RunFile{Path: fmt.Sprintf("/data/f%04d", i), Type: "file", Size: int64(i), Hash: fmt.Sprintf("%064x", i), Result: res, Message: msg})
	}
	if err := c.Checkpoint(ctx, r.ID, want[:300], nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(ctx, r.ID, want[300:], &Counts{Files: 450}); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(ctx, r.ID, []RunFile{{Path: "/x", Result: "weird"}}, nil); err == nil {
		t.Fatal("unknown result accepted")
	}
	var got []RunFile
	if err := c.RunFiles(ctx, r.ID, FileFilter{}, func(f RunFile) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("run files differ: got %d, want %d", len(got), len(want))
	}
	var failed []RunFile
	if err := c.RunFiles(ctx, r.ID, FileFilter{FailedOnly: true}, func(f RunFile) error { failed = append(failed, f); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(failed) != 9 || failed[0].Path != "/data/f0007" || failed[0].Message == "" {
		t.Fatalf("failed files %+v", failed)
	}
	if err := c.RunFiles(ctx, 999, FileFilter{}, func(RunFile) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown run: %v", err)
	}
}

func TestConcurrentCatalogsOneFile(t *testing.T) {
	// Two handles on one file (the daemon and a command) write without
	// "database is locked".
	ctx := context.Background()
	c1, path := openTest(t)
	c2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	addSource(t, c1, "a")
	addSource(t, c2, "b")
	ra, _ := c1.BeginRun(ctx, "a", BeginOptions{})
	rb, _ := c2.BeginRun(ctx, "b", BeginOptions{})
	errs := make(chan error, 2)
	write := func(c *Catalog, id int64) {
		for i := range 20 {
			files := make([]RunFile, 500)
			for j := range files {
				files[j] = RunFile{Path: fmt.Sprintf("/p/%d/%d", i, j), Type: "file", Result: ResultNew}
			}
			if err := c.Checkpoint(ctx, id, files, nil); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}
	go write(c1, ra.ID)
	go write(c2, rb.ID)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// BenchmarkRecordRunFiles records run files in checkpoints of 10,000 (a
// realistic pack's worth). b.N is the number of paths: run with
// -benchtime=1000000x for the 1M-path figure.
func BenchmarkRecordRunFiles(b *testing.B) {
	ctx := context.Background()
	c, _ := openTest(b)
	addSource(b, c, "docs")
	r, err := c.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil {
		b.Fatal(err)
	}
	const perCheckpoint = 10000
	batch := make([]RunFile, 0, perCheckpoint)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch = append(batch, RunFile{
			Path: fmt.Sprintf("/srv/share/projects/p%03d/dir%04d/file%07d.dat", i%1000, i%10000, i),
			Type: "file", Size: int64(i), Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Result: ResultNew,
		})
		if len(batch) == perCheckpoint || i == b.N-1 {
			if err := c.Checkpoint(ctx, r.ID, batch, &Counts{Files: int64(i + 1)}); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/path")
}

func TestStagedFilesCountOnlyAfterCheckpoint(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	addSource(t, c, "docs")
	count := func(c *Catalog, id int64) int {
		n := 0
		if err := c.RunFiles(ctx, id, FileFilter{}, func(RunFile) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	r, _ := c.BeginRun(ctx, "docs", BeginOptions{})
	if err := c.Stage(ctx, r.ID, []RunFile{{Path: "/a", Type: "file", Result: ResultNew}, {Path: "/b", Type: "file", Result: ResultNew}}); err != nil {
		t.Fatal(err)
	}
	if n := count(c, r.ID); n != 0 {
		t.Fatalf("staged files visible before the checkpoint: %d", n)
	}
	if err := c.Checkpoint(ctx, r.ID, []RunFile{{Path: "/c", Type: "file", Result: ResultNew}}, nil); err != nil {
		t.Fatal(err)
	}
	var order []string
	c.RunFiles(ctx, r.ID, FileFilter{}, func(f RunFile) error { order = append(order, f.Path); return nil })
	if !reflect.DeepEqual(order, []string{"/a", "/b", "/c"}) {
		t.Fatalf("after checkpoint: %v", order)
	}
	// Staged after the last checkpoint, then the process dies: dropped.
	c.Stage(ctx, r.ID, []RunFile{{Path: "/d", Type: "file", Result: ResultNew}})
	c.db.ExecContext(ctx, `UPDATE runs SET owner_pid = ? WHERE id = ?`, deadPID(t), r.ID)
	c.Close()
	c2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	var staged int
	c2.db.QueryRowContext(ctx, `SELECT count(*) FROM run_files_staged`).Scan(&staged)
	if n := count(c2, r.ID); n != 3 || staged != 0 {
		t.Fatalf("after crash: %d files, %d staged; want 3, 0", n, staged)
	}
}

func TestReusedPIDIsNotTheRunner(t *testing.T) {
	if processStart(os.Getpid()) == "" {
		t.Skip("no process start times here")
	}
	ctx := context.Background()
	c, _ := openTest(t)
	addSource(t, c, "docs")
	r, _ := c.BeginRun(ctx, "docs", BeginOptions{})
	// The run's PID is alive (a sleeping child) but started at another
	// time than the process that began the run.
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	c.db.ExecContext(ctx, `UPDATE runs SET owner_pid = ?, owner_start = '1' WHERE id = ?`, cmd.Process.Pid, r.ID)
	if ids, err := c.MarkInterrupted(ctx); err != nil || len(ids) != 1 {
		t.Fatalf("reused PID: marked %v, %v", ids, err)
	}
	// With the right start time the same PID is alive.
	r2, _ := c.BeginRun(ctx, "docs", BeginOptions{})
	c.db.ExecContext(ctx, `UPDATE runs SET owner_pid = ?, owner_start = ? WHERE id = ?`, cmd.Process.Pid, processStart(cmd.Process.Pid), r2.ID)
	if ids, err := c.MarkInterrupted(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("live runner marked: %v, %v", ids, err)
	}
}

func TestMigrationFromVersion1(t *testing.T) {
	// A catalog written by a cairn that knew only migration 1.
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`, migrations[0],
		`INSERT INTO schema_version VALUES (1)`,
		`INSERT INTO sources (name, paths, created, updated) VALUES ('docs', '["/d"]', 0, 0)`,
		`INSERT INTO runs (source, kind, status, started) VALUES ('docs', 'full', 'ok', 0)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	c, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, _ := c.SchemaVersion(ctx); v != schemaVersion {
		t.Fatalf("version %d after migrating, want %d", v, schemaVersion)
	}
	r, err := c.BeginRun(ctx, "docs", BeginOptions{})
	if err != nil || r.Kind != KindIncremental {
		t.Fatalf("run on a migrated catalog: %+v, %v", r, err)
	}
}
