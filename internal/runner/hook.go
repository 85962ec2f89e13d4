package runner

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"
)

// hook runs a hook command through the shell with the run's variables in
// its environment. A hook that exits non-zero, cannot start or outlasts
// HookTimeout fails; the error carries the tail of its output.
func (r *Runner) hook(ctx context.Context, name, command string, env []string) error {
	timeout := r.HookTimeout
	if timeout <= 0 {
		timeout = time.Hour
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd", "/C", command)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", command)
	}
	cmd.Env = append(os.Environ(), env...)
	ownGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	tail := &tailBuffer{max: 512}
	out := io.Writer(tail)
	if r.HookOutput != nil {
		out = io.MultiWriter(tail, r.HookOutput)
	}
	cmd.Stdout, cmd.Stderr = out, out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("timed out after %s", timeout)
	}
	if t := strings.TrimSpace(tail.String()); t != "" {
		return fmt.Errorf("%s: %w: %s", command, err, strings.ReplaceAll(t, "\n", " | "))
	}
	return fmt.Errorf("%s: %w", command, err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
