//go:build windows

package local

// Windows cannot sync a directory handle; renames are durable through the
// journal instead, so the error is expected and ignored.
func isNotSupported(err error) bool { return true }
