//go:build !linux

package backup

import "os"

func openNoATime(path string) (*os.File, error) { return os.Open(path) }
