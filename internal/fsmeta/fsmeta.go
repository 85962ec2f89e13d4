// Package fsmeta reads and writes the file system metadata cairn keeps:
// owners, times, inode numbers, device numbers and extended attributes.
// Platform specifics live behind build tags; on platforms without a
// feature the functions report nothing and change nothing.
package fsmeta

import (
	"io/fs"
	"time"
)

// Stat is the platform-independent part of a file's metadata that
// os.FileInfo does not carry.
type Stat struct {
	UID, GID   uint32
	Inode      uint64
	Dev        uint64
	Links      uint64
	Rdev       uint64
	AccessTime time.Time
	ChangeTime time.Time
	// Blocks is the allocated size in bytes (for sparse detection).
	Allocated int64
}

// FromInfo extracts Stat from an os.FileInfo.
func FromInfo(fi fs.FileInfo) Stat { return fromInfo(fi) }
