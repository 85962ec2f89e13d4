package wire

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// LeafSize is the size of a Merkle leaf: an object is cut into leaves of
// LeafSize bytes (the last one shorter, an empty object has one empty leaf).
const LeafSize = 4096

// Tree hashing, with domain separation so that a leaf can never pass for
// an inner node:
//
//	leaf  = SHA-256(0x00 || leaf bytes)
//	inner = SHA-256(0x01 || left || right)
//	root  = SHA-256(0x02 || uint64 big-endian object size || top)
//
// Each level pairs nodes left to right; an odd last node moves up unchanged.
// The root commits to the size, so a verifier that knows the root knows
// how many leaves there are and how long each is.

// LeafCount returns the number of leaves of an object of size bytes.
func LeafCount(size int64) uint64 {
	if size <= 0 {
		return 1
	}
	return uint64((size + LeafSize - 1) / LeafSize)
}

// LeafLen returns the length of leaf i of an object of size bytes.
func LeafLen(size int64, i uint64) int {
	start := int64(i) * LeafSize
	if start >= size {
		return 0
	}
	return int(min(LeafSize, size-start))
}

func leafHash(data []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func innerHash(l, r []byte) [32]byte {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l)
	copy(buf[33:], r)
	return sha256.Sum256(buf[:])
}

func rootHash(size int64, top [32]byte) [32]byte {
	var buf [1 + 8 + 32]byte
	buf[0] = 2
	binary.BigEndian.PutUint64(buf[1:], uint64(size))
	copy(buf[9:], top[:])
	return sha256.Sum256(buf[:])
}

// MerkleRoot returns the audit root of data. The owner computes it at
// upload (or streams with MerkleHasher) and keeps it to check audits.
func MerkleRoot(data []byte) [32]byte {
	m := NewMerkleHasher()
	_, _ = m.Write(data)
	return m.Root()
}

// MerkleHasher computes the Merkle tree of a stream. It keeps one 32-byte
// hash per leaf (8 KiB per MiB of object). Not safe for concurrent use.
type MerkleHasher struct {
	leaves [][32]byte
	buf    []byte
	size   int64
}

// NewMerkleHasher returns an empty hasher.
func NewMerkleHasher() *MerkleHasher {
	return &MerkleHasher{buf: make([]byte, 0, LeafSize)}
}

// Write adds bytes to the object. It never fails.
func (m *MerkleHasher) Write(p []byte) (int, error) {
	n := len(p)
	m.size += int64(n)
	for len(p) > 0 {
		if len(m.buf) == 0 && len(p) >= LeafSize {
			m.leaves = append(m.leaves, leafHash(p[:LeafSize]))
			p = p[LeafSize:]
			continue
		}
		k := min(LeafSize-len(m.buf), len(p))
		m.buf = append(m.buf, p[:k]...)
		p = p[k:]
		if len(m.buf) == LeafSize {
			m.leaves = append(m.leaves, leafHash(m.buf))
			m.buf = m.buf[:0]
		}
	}
	return n, nil
}

// Size returns the number of bytes written.
func (m *MerkleHasher) Size() int64 { return m.size }

func (m *MerkleHasher) allLeaves() [][32]byte {
	ls := m.leaves
	if len(m.buf) > 0 || len(ls) == 0 {
		ls = append(ls[:len(ls):len(ls)], leafHash(m.buf))
	}
	return ls
}

// Root returns the root of everything written so far.
func (m *MerkleHasher) Root() [32]byte {
	level := m.allLeaves()
	for len(level) > 1 {
		level = nextLevel(level)
	}
	return rootHash(m.size, level[0])
}

func nextLevel(level [][32]byte) [][32]byte {
	next := make([][32]byte, 0, (len(level)+1)/2)
	for i := 0; i < len(level); i += 2 {
		if i+1 < len(level) {
			next = append(next, innerHash(level[i][:], level[i+1][:]))
		} else {
			next = append(next, level[i])
		}
	}
	return next
}

// Paths returns the proof path of each leaf index, for everything written
// so far.
func (m *MerkleHasher) Paths(indexes []uint64) ([][][]byte, error) {
	level := m.allLeaves()
	n := uint64(len(level))
	out := make([][][]byte, len(indexes))
	pos := make([]uint64, len(indexes))
	for k, i := range indexes {
		if i >= n {
			return nil, fmt.Errorf("leaf %d of %d", i, n)
		}
		pos[k] = i
	}
	for len(level) > 1 {
		for k, i := range pos {
			if s := i ^ 1; s < uint64(len(level)) {
				h := level[s]
				out[k] = append(out[k], h[:])
			}
			pos[k] = i / 2
		}
		level = nextLevel(level)
	}
	return out, nil
}

// ErrAuditFailed is returned by VerifyLeaf for a leaf or path that does
// not lead to the root.
var ErrAuditFailed = errors.New("audit proof does not match the root")

// VerifyLeaf checks that data is leaf index of the object of size bytes
// whose root is root, using the sibling hashes in path.
func VerifyLeaf(root [32]byte, size int64, index uint64, data []byte, path [][]byte) error {
	n := LeafCount(size)
	if index >= n {
		return fmt.Errorf("%w: leaf %d of %d", ErrAuditFailed, index, n)
	}
	if len(data) != LeafLen(size, index) {
		return fmt.Errorf("%w: leaf %d has %d bytes, want %d", ErrAuditFailed, index, len(data), LeafLen(size, index))
	}
	h := leafHash(data)
	i, width := index, n
	for width > 1 {
		if s := i ^ 1; s < width {
			if len(path) == 0 {
				return fmt.Errorf("%w: path too short", ErrAuditFailed)
			}
			sib := path[0]
			path = path[1:]
			if len(sib) != 32 {
				return fmt.Errorf("%w: bad sibling hash", ErrAuditFailed)
			}
			if i%2 == 0 {
				h = innerHash(h[:], sib)
			} else {
				h = innerHash(sib, h[:])
			}
		}
		i /= 2
		width = (width + 1) / 2
	}
	if len(path) != 0 {
		return fmt.Errorf("%w: path too long", ErrAuditFailed)
	}
	if rootHash(size, h) != root {
		return ErrAuditFailed
	}
	return nil
}
