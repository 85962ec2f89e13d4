//go:build linux

package backup

import (
	"os"
	"syscall"
)

// openNoATime opens a file without updating its access time where the
// caller may (the file's owner or root), and plainly otherwise.
func openNoATime(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOATIME, 0)
	if err == nil {
		return f, nil
	}
	return os.Open(path)
}
