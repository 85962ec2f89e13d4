//go:build !unix

package cli

import (
	"os/exec"
	"testing"
)

func asNobody(t *testing.T, cmd *exec.Cmd, dir string) {}
