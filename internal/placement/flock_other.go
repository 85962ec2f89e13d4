//go:build !unix

package placement

import "os"

// lockFile does nothing where flock is not available; the caller must
// make sure one process opens the record.
func lockFile(f *os.File) error { return nil }
