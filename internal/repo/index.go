package repo

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/cairn-backup/cairn/internal/crypto"
)

// PackedBlob is an index entry: a blob and the pack it lives in.
type PackedBlob struct {
	BlobEntry
	Pack crypto.ID
}

// IndexFile is the content of one index object: packs and their blobs.
type IndexFile struct {
	Packs []IndexPack
}

// IndexPack lists the blobs of one pack.
type IndexPack struct {
	ID    crypto.ID
	Size  int64
	Blobs []BlobEntry
}

var (
	indexMagic = []byte("CIDX")
	adIndex    = []byte("cairn index v1")
)

const indexVersion = 1

// Limits on what a decoded index may claim, so a hostile or damaged file
// cannot make a reader allocate without bound.
const (
	maxIndexPacks     = 1 << 22
	maxBlobsPerPack   = 1 << 20
	maxIndexPlainSize = 1 << 30
)

// EncodeIndexPlain serializes an index file before encryption:
//
//	"CIDX" version(1) uvarint(npacks)
//	per pack: id(32) uvarint(size) uvarint(nblobs)
//	  per blob: type(1) flags(1) uvarint(offset) uvarint(length) uvarint(rawlen) id(32)
func EncodeIndexPlain(f *IndexFile) []byte {
	b := append([]byte{}, indexMagic...)
	b = append(b, indexVersion)
	b = binary.AppendUvarint(b, uint64(len(f.Packs)))
	for _, p := range f.Packs {
		b = append(b, p.ID[:]...)
		b = binary.AppendUvarint(b, uint64(p.Size))
		b = binary.AppendUvarint(b, uint64(len(p.Blobs)))
		for _, e := range p.Blobs {
			b = append(b, byte(e.Type), e.Flags)
			b = binary.AppendUvarint(b, uint64(e.Offset))
			b = binary.AppendUvarint(b, uint64(e.Length))
			b = binary.AppendUvarint(b, uint64(e.RawLen))
			b = append(b, e.ID[:]...)
		}
	}
	return b
}

type byteReader struct {
	b   []byte
	err error
}

func (r *byteReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: index: %s", ErrCorrupt, what)
	}
}

func (r *byteReader) uvarint(max uint64, what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.fail("bad " + what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *byteReader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated " + what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

// DecodeIndexPlain parses what EncodeIndexPlain wrote, validating every
// field against the limits above.
func DecodeIndexPlain(b []byte) (*IndexFile, error) {
	r := &byteReader{b: b}
	magic := r.bytes(len(indexMagic)+1, "header")
	if r.err != nil || string(magic[:4]) != string(indexMagic) {
		return nil, fmt.Errorf("%w: index: bad magic", ErrCorrupt)
	}
	if magic[4] != indexVersion {
		return nil, fmt.Errorf("%w: index version %d", ErrVersion, magic[4])
	}
	np := r.uvarint(maxIndexPacks, "pack count")
	// Each pack takes at least 34 bytes: bound the allocation by the input.
	if np > uint64(len(r.b))/34+1 {
		r.fail("pack count exceeds data")
	}
	f := &IndexFile{}
	if r.err == nil {
		f.Packs = make([]IndexPack, 0, np)
	}
	for i := uint64(0); i < np && r.err == nil; i++ {
		var p IndexPack
		copy(p.ID[:], r.bytes(crypto.IDSize, "pack id"))
		p.Size = int64(r.uvarint(1<<40, "pack size"))
		nb := r.uvarint(maxBlobsPerPack, "blob count")
		if nb > uint64(len(r.b))/37+1 {
			r.fail("blob count exceeds data")
			break
		}
		p.Blobs = make([]BlobEntry, 0, nb)
		for j := uint64(0); j < nb && r.err == nil; j++ {
			tf := r.bytes(2, "blob type")
			if r.err != nil {
				break
			}
			e := BlobEntry{Type: BlobType(tf[0]), Flags: tf[1]}
			if e.Type != DataBlob && e.Type != TreeBlob {
				r.fail("blob type")
			}
			if e.Flags&^flagZstd != 0 {
				r.fail("blob flags")
			}
			e.Offset = uint32(r.uvarint(1<<32-1, "offset"))
			e.Length = uint32(r.uvarint(1<<32-1, "length"))
			e.RawLen = uint32(r.uvarint(1<<32-1, "raw length"))
			if r.err == nil && (e.Length < crypto.Overhead || int64(e.Offset)+int64(e.Length) > p.Size) {
				r.fail("blob outside its pack")
			}
			copy(e.ID[:], r.bytes(crypto.IDSize, "blob id"))
			p.Blobs = append(p.Blobs, e)
		}
		f.Packs = append(f.Packs, p)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return f, nil
}

// location is a compact index entry held in memory.
type location struct {
	pack   uint32 // position in MasterIndex.packs
	offset uint32
	length uint32
	rawLen uint32
	typ    BlobType
	flags  uint8
}

// MasterIndex is the union of all index files, in memory. It is safe for
// concurrent use.
type MasterIndex struct {
	mu      sync.RWMutex
	packs   []crypto.ID
	packPos map[crypto.ID]uint32
	size    []int64
	blobs   map[crypto.ID]location
}

// NewMasterIndex returns an empty index.
func NewMasterIndex() *MasterIndex {
	return &MasterIndex{packPos: map[crypto.ID]uint32{}, blobs: map[crypto.ID]location{}}
}

// AddPack records a pack and its blobs. A blob already known keeps its first
// location (duplicates in several packs are harmless).
func (m *MasterIndex) AddPack(p IndexPack) {
	m.mu.Lock()
	defer m.mu.Unlock()
	pos, ok := m.packPos[p.ID]
	if !ok {
		pos = uint32(len(m.packs))
		m.packs = append(m.packs, p.ID)
		m.size = append(m.size, p.Size)
		m.packPos[p.ID] = pos
	}
	for _, e := range p.Blobs {
		if _, dup := m.blobs[e.ID]; dup {
			continue
		}
		m.blobs[e.ID] = location{pack: pos, offset: e.Offset, length: e.Length, rawLen: e.RawLen, typ: e.Type, flags: e.Flags}
	}
}

// Lookup finds a blob.
func (m *MasterIndex) Lookup(id crypto.ID) (PackedBlob, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.blobs[id]
	if !ok {
		return PackedBlob{}, false
	}
	return PackedBlob{Pack: m.packs[l.pack], BlobEntry: BlobEntry{
		ID: id, Type: l.typ, Flags: l.flags, Offset: l.offset, Length: l.length, RawLen: l.rawLen,
	}}, true
}

// Has reports whether the blob is indexed.
func (m *MasterIndex) Has(id crypto.ID) bool {
	m.mu.RLock()
	_, ok := m.blobs[id]
	m.mu.RUnlock()
	return ok
}

// Len returns the number of blobs.
func (m *MasterIndex) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.blobs)
}

// HasPack reports whether the pack is indexed.
func (m *MasterIndex) HasPack(id crypto.ID) bool {
	m.mu.RLock()
	_, ok := m.packPos[id]
	m.mu.RUnlock()
	return ok
}

// Packs returns every indexed pack with its size.
func (m *MasterIndex) Packs() map[crypto.ID]int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[crypto.ID]int64, len(m.packs))
	for i, p := range m.packs {
		out[p] = m.size[i]
	}
	return out
}

// Each calls fn for every blob.
func (m *MasterIndex) Each(fn func(PackedBlob)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for id, l := range m.blobs {
		fn(PackedBlob{Pack: m.packs[l.pack], BlobEntry: BlobEntry{
			ID: id, Type: l.typ, Flags: l.flags, Offset: l.offset, Length: l.length, RawLen: l.rawLen,
		}})
	}
}
