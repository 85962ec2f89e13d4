//go:build unix

package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/catalog"
)

func TestKilledRunIsResumed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	// Enough data for several checkpoints.
	var total int64
	for i := range 40 {
		data := randBytes(512 << 10)
		total += int64(len(data))
		writeFile(t, filepath.Join(e.src, fmt.Sprintf("d%02d", i/10), fmt.Sprintf("f%03d", i)), data)
	}
	e.addSource(t, &catalog.Source{})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := childCmd(t, self, childConfig{Catalog: e.catPath, Repo: e.repoDir, Source: "docs", BlockAfterCheckpoint: true})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 64)
	n, err := stdout.Read(line)
	if err != nil || !strings.HasPrefix(string(line[:n]), "checkpoint") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not reach a checkpoint: %q, %v", line[:n], err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// A new process opens the catalog: the killed run is interrupted, and
	// what it recorded was durable.
	e.cat.Close()
	e.repo.Close()
	e.open(t)
	runs, err := e.cat.Runs(ctx, catalog.RunFilter{Source: "docs"})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v", runs, err)
	}
	killed := runs[0]
	if killed.Status != catalog.StatusInterrupted || !killed.Finished.IsZero() {
		t.Fatalf("killed run %+v", killed)
	}
	recorded := files(t, e.cat, killed.ID)
	var recordedBytes int64
	for _, f := range recorded {
		if f.Result != catalog.ResultNew {
			t.Fatalf("killed run recorded %+v", f)
		}
		recordedBytes += f.Size
	}
	t.Logf("killed after recording %d files (%d of %d bytes)", len(recorded), recordedBytes, total)

	resumed, err := e.runner().Run(ctx, "docs", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ResumedFrom != killed.ID || resumed.Kind != catalog.KindFull || resumed.Status != catalog.StatusOK {
		t.Fatalf("resumed run %+v", resumed)
	}
	if resumed.Files != 40 || resumed.SnapshotID == "" {
		t.Fatalf("resumed run did not cover the source: %+v", resumed.Counts)
	}
	// Every byte the killed run recorded as saved was in the repository:
	// the resumed run did not have to store it again.
	if resumed.BytesAdded > total-recordedBytes {
		t.Fatalf("resumed run added %d bytes; the killed run's %d recorded bytes were not durable (total %d)",
			resumed.BytesAdded, recordedBytes, total)
	}
	if len(recorded) == 0 {
		t.Fatal("the killed run recorded nothing before its checkpoint")
	}
}

func TestUnreadableFileAsUnprivilegedUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	writeFile(t, filepath.Join(e.src, "ok.txt"), []byte("readable"))
	secret := filepath.Join(e.src, "secret.key")
	writeFile(t, secret, []byte("private"))
	if err := os.Chmod(secret, 0); err != nil {
		t.Fatal(err)
	}
	e.addSource(t, &catalog.Source{})

	var run *catalog.Run
	var runErr error
	if os.Geteuid() != 0 {
		run, runErr = e.runner().Run(ctx, "docs", Options{})
	} else {
		// Root reads everything: run the backup in a child process as nobody.
		run, runErr = runAsNobody(t, e)
	}
	if !errors.Is(runErr, ErrPartial) {
		t.Fatalf("run error %v, want ErrPartial", runErr)
	}
	if run.Status != catalog.StatusPartial || run.Failed != 1 || run.SnapshotID == "" {
		t.Fatalf("run %+v", run)
	}
	e.cat.Close()
	e.open(t)
	var failed []catalog.RunFile
	e.cat.RunFiles(ctx, run.ID, catalog.FileFilter{FailedOnly: true}, func(f catalog.RunFile) error {
		failed = append(failed, f)
		return nil
	})
	if len(failed) != 1 || failed[0].Path != secret || !strings.Contains(failed[0].Message, "permission denied") {
		t.Fatalf("failed files %+v", failed)
	}
	if rec := files(t, e.cat, run.ID)[filepath.Join(e.src, "ok.txt")]; rec.Result != catalog.ResultNew {
		t.Fatalf("ok.txt %+v", rec)
	}
}

// runAsNobody runs the source in a re-executed test binary as the user
// nobody, and returns the run and ErrPartial for exit code 3.
func runAsNobody(t *testing.T, e *env) (*catalog.Run, error) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The child must reach its binary, the catalog and the repository.
	e.cat.Close()
	e.repo.Close()
	for d := e.dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Skipf("cannot open %s to nobody: %v", d, err)
		}
		if d == filepath.Dir(filepath.Dir(e.dir)) {
			break
		}
	}
	err = filepath.Walk(e.dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(p, e.src) {
			return nil // the source keeps its owner: nobody reads it as "other"
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(e.dir, "runner.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := childCmd(t, exe, childConfig{Catalog: e.catPath, Repo: e.repoDir, Source: "docs"})
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Dir = e.dir
	cmd.Env = append(cmd.Env, "HOME="+e.dir)
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Skipf("cannot run as nobody: %v", err)
	}
	var run catalog.Run
	if jerr := json.Unmarshal(out, &run); jerr != nil {
		t.Fatalf("child output %q: %v (exit %v)", out, jerr, err)
	}
	if exit != nil && exit.ExitCode() == 3 {
		return &run, ErrPartial
	}
	return &run, err
}

func TestHookTimeoutKillsItsChildren(t *testing.T) {
	e := newEnv(t)
	pidFile := filepath.Join(e.dir, "child.pid")
	rn := e.runner()
	rn.HookTimeout = 300 * time.Millisecond
	err := rn.hook(context.Background(), "pre", "sleep 60 & echo $! > "+pidFile+"; wait", nil)
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("hook error %v, want a timeout", err)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The group was sent SIGKILL: the sleep is gone (or a zombie of its
	// reaped shell, which init collects).
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hook child %d still runs after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
