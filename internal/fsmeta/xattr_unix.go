//go:build linux || darwin

package fsmeta

import (
	"bytes"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Xattrs lists the extended attributes of path (not following symlinks).
// File systems without xattr support yield none, not an error.
func Xattrs(path string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		if err != nil && !unsupported(err) {
			return nil, err
		}
		return nil, nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		if unsupported(err) {
			return nil, nil
		}
		return nil, err
	}
	out := map[string][]byte{}
	for _, name := range bytes.Split(buf[:n], []byte{0}) {
		if len(name) == 0 {
			continue
		}
		vs, err := unix.Lgetxattr(path, string(name), nil)
		if err != nil {
			continue // removed meanwhile, or not permitted: keep the others
		}
		v := make([]byte, vs)
		vs, err = unix.Lgetxattr(path, string(name), v)
		if err != nil {
			continue
		}
		out[string(name)] = v[:vs]
	}
	return out, nil
}

// SetXattr sets one extended attribute on path (not following symlinks).
func SetXattr(path, name string, value []byte) error {
	err := unix.Lsetxattr(path, name, value, 0)
	if err != nil && unsupported(err) {
		return nil
	}
	return err
}

func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)
}

// Lchown changes the owner of path without following symlinks.
func Lchown(path string, uid, gid int) error { return os.Lchown(path, uid, gid) }

// Lutimes sets the access and modification times of path without
// following symlinks.
func Lutimes(path string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// Mkfifo creates a named pipe.
func Mkfifo(path string, mode uint32) error { return unix.Mkfifo(path, mode) }

// Mknod creates a device node.
func Mknod(path string, mode uint32, dev uint64) error { return unix.Mknod(path, mode, int(dev)) }
