//go:build !unix

package runner

import "os/exec"

// ownGroup does nothing here: cancelling kills the shell only.
func ownGroup(cmd *exec.Cmd) {}
