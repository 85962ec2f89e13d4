//go:build !linux && !darwin

package fsmeta

import (
	"errors"
	"os"
	"time"
)

// Xattrs reports no extended attributes on this platform.
func Xattrs(path string) (map[string][]byte, error) { return nil, nil }

// SetXattr does nothing on this platform.
func SetXattr(path, name string, value []byte) error { return nil }

// Lchown does nothing on this platform.
func Lchown(path string, uid, gid int) error { return nil }

// Lutimes sets times, following links (the platform offers no other way).
func Lutimes(path string, atime, mtime time.Time) error { return os.Chtimes(path, atime, mtime) }

// ErrUnsupported is returned for special files this platform cannot make.
var ErrUnsupported = errors.New("not supported on this platform")

// Mkfifo is not supported on this platform.
func Mkfifo(path string, mode uint32) error { return ErrUnsupported }

// Mknod is not supported on this platform.
func Mknod(path string, mode uint32, dev uint64) error { return ErrUnsupported }
