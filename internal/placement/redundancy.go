package placement

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxPieces is the most pieces (copies, or data plus parity shards) one
// pack is cut into. Each piece lives on its own node.
const MaxPieces = 32

// ErrRedundancy is wrapped by errors about an invalid redundancy setting.
var ErrRedundancy = errors.New("invalid redundancy")

// Redundancy says how a pack is kept on hosts: Copies whole copies on as
// many distinct nodes, or (with Data > 0) Reed-Solomon coding into Data
// data shards and Parity parity shards, each on a distinct node, any Data
// of which rebuild the pack. The zero value is invalid.
type Redundancy struct {
	Copies int
	Data   int
	Parity int
}

// Replicas returns a redundancy of n whole copies.
func Replicas(n int) Redundancy { return Redundancy{Copies: n} }

// Erasure returns a Reed-Solomon redundancy with k data and m parity shards.
func Erasure(k, m int) Redundancy { return Redundancy{Data: k, Parity: m} }

// Coded reports whether r uses erasure coding.
func (r Redundancy) Coded() bool { return r.Data > 0 }

// Pieces returns how many pieces one pack becomes, each on its own node.
func (r Redundancy) Pieces() int {
	if r.Coded() {
		return r.Data + r.Parity
	}
	return r.Copies
}

// Needed returns how many distinct pieces rebuild a pack: 1 copy, or K shards.
func (r Redundancy) Needed() int {
	if r.Coded() {
		return r.Data
	}
	return 1
}

// Tolerates returns how many pieces (hence nodes) may be lost.
func (r Redundancy) Tolerates() int { return r.Pieces() - r.Needed() }

// Overhead returns stored bytes per byte of pack (ignoring shard headers).
func (r Redundancy) Overhead() float64 {
	if r.Coded() {
		return float64(r.Data+r.Parity) / float64(r.Data)
	}
	return float64(r.Copies)
}

// String returns the form ParseRedundancy reads: "N" or "K+M".
func (r Redundancy) String() string {
	if r.Coded() {
		return fmt.Sprintf("%d+%d", r.Data, r.Parity)
	}
	return strconv.Itoa(r.Copies)
}

// Validate checks the setting on its own (not against the hosts there are).
func (r Redundancy) Validate() error {
	switch {
	case r.Coded():
		if r.Copies != 0 {
			return fmt.Errorf("%w: copies and shards together", ErrRedundancy)
		}
		if r.Parity < 1 {
			return fmt.Errorf("%w: %s has no parity shard; use %d copies or K+M with M at least 1", ErrRedundancy, r, 1)
		}
		if r.Data+r.Parity > MaxPieces {
			return fmt.Errorf("%w: %s makes %d shards, at most %d", ErrRedundancy, r, r.Data+r.Parity, MaxPieces)
		}
	case r.Parity != 0 || r.Data < 0:
		return fmt.Errorf("%w: %d data shards", ErrRedundancy, r.Data)
	case r.Copies < 1:
		return fmt.Errorf("%w: at least one copy is needed", ErrRedundancy)
	case r.Copies > MaxPieces:
		return fmt.Errorf("%w: %d copies, at most %d", ErrRedundancy, r.Copies, MaxPieces)
	}
	return nil
}

// ParseRedundancy reads "N" (N whole copies on N distinct nodes) or "K+M"
// (Reed-Solomon, K data and M parity shards on K+M distinct nodes).
func ParseRedundancy(s string) (Redundancy, error) {
	s = strings.TrimSpace(s)
	var r Redundancy
	if k, m, ok := strings.Cut(s, "+"); ok {
		kk, err1 := strconv.Atoi(strings.TrimSpace(k))
		mm, err2 := strconv.Atoi(strings.TrimSpace(m))
		if err1 != nil || err2 != nil || kk < 1 {
			return Redundancy{}, fmt.Errorf("%w: %q: want N (copies) or K+M (data+parity shards), e.g. 2 or 3+2", ErrRedundancy, s)
		}
		r = Erasure(kk, mm)
	} else {
		n, err := strconv.Atoi(s)
		if err != nil {
			return Redundancy{}, fmt.Errorf("%w: %q: want N (copies) or K+M (data+parity shards), e.g. 2 or 3+2", ErrRedundancy, s)
		}
		r = Replicas(n)
	}
	if err := r.Validate(); err != nil {
		return Redundancy{}, err
	}
	return r, nil
}

// DefaultRedundancy chooses a setting for an owner with the given number
// of usable hosts: whole copies while hosts are few (one copy per host up
// to 2, so a single friend still gets a backup), 2+1 from 3 hosts and 3+2
// from 5, which survive the loss of one and two nodes for 1.5 and 1.67
// times the bytes instead of 2 and 3 times. With no host it returns 1 copy,
// placed once a host appears.
func DefaultRedundancy(hosts int) Redundancy {
	switch {
	case hosts <= 1:
		return Replicas(1)
	case hosts == 2:
		return Replicas(2)
	case hosts < 5:
		return Erasure(2, 1)
	default:
		return Erasure(3, 2)
	}
}

// CheckHosts reports whether hosts distinct nodes are enough to place every
// piece; when not, placement is degraded (what fits is placed, the rest
// later) and the returned error says so. It wraps ErrTooFewHosts.
func (r Redundancy) CheckHosts(hosts int) error {
	if hosts < r.Pieces() {
		return fmt.Errorf("%w: redundancy %s needs %d nodes, %d available; the rest is placed when more nodes are online",
			ErrTooFewHosts, r, r.Pieces(), hosts)
	}
	return nil
}

// ErrTooFewHosts says there are fewer distinct hosts than pieces to place.
var ErrTooFewHosts = errors.New("too few hosts")
