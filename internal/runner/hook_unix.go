//go:build unix

package runner

import (
	"os/exec"
	"syscall"
)

// ownGroup puts the hook in its own process group and makes cancelling
// kill the whole group, so a shell's children (pg_dump, ...) go too.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
