//go:build darwin

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
		AccessTime: time.Unix(st.Atimespec.Sec, st.Atimespec.Nsec),
		ChangeTime: time.Unix(st.Ctimespec.Sec, st.Ctimespec.Nsec),
		Allocated:  st.Blocks * 512,
	}
}
