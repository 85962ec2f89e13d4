//go:build !unix

package p2p

import "errors"

// FreeDisk is not measured on this platform: the offer must be set as a size.
func FreeDisk(dir string) (int64, error) {
	return 0, errors.New("free disk space is not measured on this platform")
}
