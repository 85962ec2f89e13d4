//go:build !linux && !darwin

package fsmeta

import "io/fs"

func fromInfo(fi fs.FileInfo) Stat { return Stat{Links: 1} }
