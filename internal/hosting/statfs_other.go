//go:build !unix

package hosting

import "math"

// diskFree is not measured on this platform; the offer alone limits use.
func diskFree(string) (int64, error) { return math.MaxInt64, nil }
