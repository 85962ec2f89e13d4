package crashtest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testSeed returns $CAIRN_CRASH_SEED or a fresh seed, logged.
func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("CAIRN_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("CAIRN_CRASH_SEED: %v", err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with CAIRN_CRASH_SEED=%d)", seed, seed)
	return seed
}

func seedAndIterations(t *testing.T) (uint64, int) {
	t.Helper()
	seed := testSeed(t)
	n := 24
	if s := os.Getenv("CAIRN_CRASH_ITERATIONS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			t.Fatalf("CAIRN_CRASH_ITERATIONS: %q", s)
		}
		n = v
	}
	if testing.Short() {
		n = min(n, 6)
	}
	t.Logf("%d iterations (CAIRN_CRASH_ITERATIONS)", n)
	return seed, n
}

// killAfter starts cmd and SIGKILLs it after delay, unless it ends first.
// It reports whether the process was killed, and its exit code otherwise.
func killAfter(t *testing.T, cmd *exec.Cmd, delay time.Duration) (killed bool, code int, took time.Duration) {
	t.Helper()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case err := <-done:
		return false, exitCode(err), time.Since(start)
	case <-timer.C:
		_ = cmd.Process.Signal(syscall.SIGKILL)
		err := <-done
		// It may have finished just before the signal.
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return true, -1, time.Since(start)
		}
		return false, exitCode(err), time.Since(start)
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -2
}

type forgetJSON struct {
	Removed []string `json:"removed"`
}

// TestCrash kills backup, forget --prune and prune at random points and
// checks the repository after each kill.
func TestCrash(t *testing.T) {
	seed, iterations := seedAndIterations(t)
	e := newEnv(t, seed)
	e.generate()
	// How long each operation takes when left alone: kill points are
	// drawn from [0, 1.2 × that], and the estimate follows the runs that
	// finish before their kill.
	took := map[string]time.Duration{}
	start := time.Now()
	e.backup()
	took["backup"] = time.Since(start)
	e.mutate()
	e.backup()
	took["prune"] = 300 * time.Millisecond
	took["forget"] = 300 * time.Millisecond
	took["concurrent"] = took["backup"]
	// A second source, backed up alongside a backup that is killed.
	other := filepath.Join(e.dir, "other")
	for i := 0; i < 20; i++ {
		writeAt(t, filepath.Join(other, fmt.Sprintf("f%02d", i)), e.randomBytes(e.rng.IntN(200<<10)))
	}

	ops := []string{"backup", "prune", "forget", "concurrent"}
	kills := 0
	for i := 0; i < iterations; i++ {
		op := ops[i%len(ops)]
		var args []string
		var removable map[string]bool
		var companion *exec.Cmd
		var companionOut strings.Builder
		switch op {
		case "backup", "concurrent":
			e.mutate()
			args = []string{"backup", e.src, "--json"}
			if op == "concurrent" {
				writeAt(t, filepath.Join(other, fmt.Sprintf("f%02d", e.rng.IntN(30))), e.randomBytes(e.rng.IntN(300<<10)))
				companion = e.command("backup", other, "--json")
				companion.Stdout, companion.Stderr = &companionOut, &companionOut
			}
			if e.rng.IntN(4) == 0 {
				args = append(args, "--full")
			}
		case "prune":
			// Make garbage first: forget (not killed) all but a few.
			keep := 2 + e.rng.IntN(3)
			out := e.mustRun("forget", "--keep-last", strconv.Itoa(keep), "--json")
			var f forgetJSON
			if err := json.Unmarshal([]byte(out), &f); err != nil {
				t.Fatalf("forget output %q: %v", out, err)
			}
			for _, id := range f.Removed {
				delete(e.want, id)
			}
			args = []string{"prune"}
			if e.rng.IntN(3) == 0 {
				args = append(args, "--max-unused", "20%")
			}
		case "forget":
			keep := 1 + e.rng.IntN(3)
			args = []string{"forget", "--keep-last", strconv.Itoa(keep), "--prune", "--json"}
			out := e.mustRun("forget", "--keep-last", strconv.Itoa(keep), "--dry-run", "--json")
			var f forgetJSON
			if err := json.Unmarshal([]byte(out), &f); err != nil {
				t.Fatalf("forget output %q: %v", out, err)
			}
			removable = map[string]bool{}
			for _, id := range f.Removed {
				removable[id] = true
			}
		}
		before := e.snapshots()
		limit := took[op] * 6 / 5
		if limit < 50*time.Millisecond {
			limit = 50 * time.Millisecond
		}
		delay := time.Duration(e.rng.Int64N(int64(limit)))
		if companion != nil {
			if err := companion.Start(); err != nil {
				t.Fatal(err)
			}
		}
		killed, code, ran := killAfter(t, e.command(args...), delay)
		companionID := ""
		if companion != nil {
			// The backup running alongside the killed one must succeed.
			if err := companion.Wait(); err != nil {
				t.Fatalf("iteration %d (seed %d): the backup alongside the killed one failed: %v\n%s", i, seed, err, companionOut.String())
			}
			var b backupJSON
			if err := json.Unmarshal([]byte(companionOut.String()), &b); err != nil {
				t.Fatalf("backup output %q: %v", companionOut.String(), err)
			}
			companionID = b.SnapshotID
			e.want[companionID] = manifestFS(t, other, "")
		}
		what := fmt.Sprintf("iteration %d (seed %d): %s killed after %v", i, seed, op, delay)
		if !killed {
			what = fmt.Sprintf("iteration %d (seed %d): %s finished (exit %d) before the kill at %v", i, seed, op, code, delay)
			if code != 0 {
				t.Fatalf("%s", what)
			}
			// Learn how long it takes, so later kills land inside it.
			took[op] = (took[op] + ran) / 2
		} else {
			kills++
		}
		t.Logf("%s; left %s", what, e.state())

		after := e.snapshots()
		switch op {
		case "backup", "concurrent":
			// A backup that got as far as its snapshot saved the tree as
			// it is now.
			for id := range after {
				if !before[id] && id != companionID {
					e.want[id] = manifestFS(t, e.src, "")
				}
			}
		case "forget":
			for id := range before {
				if !after[id] {
					if !removable[id] {
						t.Fatalf("%s: forget removed snapshot %s it should keep", what, id[:8])
					}
					delete(e.want, id)
				}
			}
		}
		for id := range after {
			if !before[id] && op != "backup" && op != "concurrent" {
				t.Fatalf("%s: snapshot %s appeared", what, id[:8])
			}
		}
		// No unlock: the dead process's lock must be seen as stale.
		warnings := e.check(what)
		e.verify(what)
		// A prune (exclusive lock: the dead process's lock, shared or
		// exclusive, must not stop it) finishes what a killed one began
		// and clears what a killed backup left; then the next backup
		// completes.
		e.mustRun("prune")
		if w := e.check(what + ", then prune"); w != 0 {
			t.Fatalf("%s: %d warnings after a completed prune", what, w)
		}
		out := e.mustRun("unlock")
		e.mutate()
		e.backup()
		t.Logf("  check: %d warnings; unlock: %s; %d snapshots verified", warnings, strings.TrimSpace(out), len(e.want))
	}
	e.mustRun("prune")
	if w := e.check("final"); w != 0 {
		t.Fatalf("final: %d warnings after prune", w)
	}
	e.verify("final")
	t.Logf("%d processes killed in %d iterations", kills, iterations)
}

// TestConcurrentBackups runs two backups into one repository at once.
func TestConcurrentBackups(t *testing.T) {
	e := newEnv(t, testSeed(t))
	e.generate()
	e.backup()
	e.mutate()
	other := e.src + "-other"
	if err := os.Rename(e.src, other); err != nil {
		t.Fatal(err)
	}
	e.generate()
	for round := 0; round < 2; round++ {
		a := e.command("backup", e.src, "--json")
		b := e.command("backup", other, "--json")
		var outA, outB strings.Builder
		a.Stdout, b.Stdout = &outA, &outB
		var errA, errB strings.Builder
		a.Stderr, b.Stderr = &errA, &errB
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		// A check running alongside must not mistake work in progress
		// for damage.
		c := e.command("check", "--read-data")
		var outC strings.Builder
		c.Stdout, c.Stderr = &outC, &outC
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		ea, eb := a.Wait(), b.Wait()
		if err := c.Wait(); err != nil {
			t.Fatalf("round %d: check during backups: %v\n%s", round, err, outC.String())
		}
		if ea != nil || eb != nil {
			t.Fatalf("round %d: backups: %v (%s), %v (%s)", round, ea, errA.String(), eb, errB.String())
		}
		for out, src := range map[string]string{outA.String(): e.src, outB.String(): other} {
			var s backupJSON
			if err := json.Unmarshal([]byte(out), &s); err != nil {
				t.Fatalf("backup output %q: %v", out, err)
			}
			e.want[s.SnapshotID] = manifestFS(t, src, "")
		}
		e.check(fmt.Sprintf("round %d", round))
		e.verify(fmt.Sprintf("round %d", round))
		e.mutate()
	}
}

func writeAt(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
