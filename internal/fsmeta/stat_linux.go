//go:build linux

package fsmeta

import (
	"io/fs"
	"syscall"
	"time"
)

func fromInfo(fi fs.FileInfo) Stat {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Stat{}
	}
	return Stat{
		UID: st.Uid, GID: st.Gid, Inode: st.Ino, Dev: uint64(st.Dev), Links: uint64(st.Nlink), Rdev: uint64(st.Rdev),
		AccessTime: time.Unix(int64(st.Atim.Sec), int64(st.Atim.Nsec)),
		ChangeTime: time.Unix(int64(st.Ctim.Sec), int64(st.Ctim.Nsec)),
		Allocated:  int64(st.Blocks) * 512,
	}
}
