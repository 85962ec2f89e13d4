//go:build unix

package p2p

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeDisk returns the bytes available to this user on dir's file system.
func FreeDisk(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free disk of %s: %w", dir, err)
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
