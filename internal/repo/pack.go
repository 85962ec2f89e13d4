package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// BlobType says what a blob holds.
type BlobType uint8

// Blob types. The numbers are part of the format.
const (
	DataBlob BlobType = 1
	TreeBlob BlobType = 2
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return fmt.Sprintf("blobtype(%d)", uint8(t))
}

// Blob flags, part of the format.
const (
	flagZstd uint8 = 1 // the plaintext was compressed with zstd
)

// BlobEntry describes one blob inside a pack.
type BlobEntry struct {
	ID     crypto.ID
	Type   BlobType
	Flags  uint8
	Offset uint32 // of the ciphertext, from the start of the pack
	Length uint32 // of the ciphertext
	RawLen uint32 // of the plaintext after decompression
}

// Compressed reports whether the blob's plaintext was compressed.
func (e BlobEntry) Compressed() bool { return e.Flags&flagZstd != 0 }

// Pack layout (docs/format.md):
//
//	blob ciphertexts, back to back
//	header ciphertext = Seal(entries, ad "cairn pack header v1")
//	trailer: header ciphertext length (uint32 LE) || "CAIRNPK1"
//
// An entry in the header plaintext is 46 bytes: type, flags, length
// (uint32 LE), raw length (uint32 LE), blob ID (32 bytes), and the header
// plaintext starts with the entry count (uint32 LE). Offsets are implied by
// the order.
const (
	headerEntrySize = 1 + 1 + 4 + 4 + crypto.IDSize
	trailerSize     = 4 + 8
	maxHeaderLen    = 4 + 1<<20*headerEntrySize + crypto.Overhead
)

var (
	packMagic = []byte("CAIRNPK1")
	adHeader  = []byte("cairn pack header v1")
)

// blobAD is the additional data a blob's ciphertext is bound to: its type
// and ID, so a swapped or mislabelled blob fails authentication.
func blobAD(t BlobType, id crypto.ID) []byte {
	ad := make([]byte, 0, 16+1+crypto.IDSize)
	ad = append(ad, "cairn blob v1"...)
	ad = append(ad, byte(t))
	return append(ad, id[:]...)
}

func encodeHeader(keys *crypto.Keys, entries []BlobEntry) []byte {
	pt := make([]byte, 4, 4+len(entries)*headerEntrySize)
	binary.LittleEndian.PutUint32(pt, uint32(len(entries)))
	for _, e := range entries {
		pt = append(pt, byte(e.Type), e.Flags)
		pt = binary.LittleEndian.AppendUint32(pt, e.Length)
		pt = binary.LittleEndian.AppendUint32(pt, e.RawLen)
		pt = append(pt, e.ID[:]...)
	}
	ct := keys.Seal(nil, pt, adHeader)
	ct = binary.LittleEndian.AppendUint32(ct, uint32(len(ct)))
	return append(ct, packMagic...)
}

// parseHeaderPlain decodes a decrypted header and checks that the blobs it
// describes fit exactly before the header.
func parseHeaderPlain(pt []byte, headerOffset int64) ([]BlobEntry, error) {
	if len(pt) < 4 {
		return nil, fmt.Errorf("%w: pack header too short", ErrCorrupt)
	}
	n := binary.LittleEndian.Uint32(pt)
	if int64(n)*headerEntrySize != int64(len(pt)-4) {
		return nil, fmt.Errorf("%w: pack header has %d bytes for %d entries", ErrCorrupt, len(pt)-4, n)
	}
	entries := make([]BlobEntry, 0, n)
	var off int64
	p := pt[4:]
	for i := uint32(0); i < n; i++ {
		e := BlobEntry{Type: BlobType(p[0]), Flags: p[1]}
		e.Length = binary.LittleEndian.Uint32(p[2:])
		e.RawLen = binary.LittleEndian.Uint32(p[6:])
		copy(e.ID[:], p[10:10+crypto.IDSize])
		p = p[headerEntrySize:]
		if e.Type != DataBlob && e.Type != TreeBlob {
			return nil, fmt.Errorf("%w: pack header entry %d has unknown type %d", ErrCorrupt, i, e.Type)
		}
		if e.Flags&^flagZstd != 0 {
			return nil, fmt.Errorf("%w: pack header entry %d has unknown flags %#x", ErrCorrupt, i, e.Flags)
		}
		if e.Length < crypto.Overhead {
			return nil, fmt.Errorf("%w: pack header entry %d too short", ErrCorrupt, i)
		}
		e.Offset = uint32(off)
		off += int64(e.Length)
		if off > headerOffset {
			return nil, fmt.Errorf("%w: pack header entries overrun the pack", ErrCorrupt)
		}
		entries = append(entries, e)
	}
	if off != headerOffset {
		return nil, fmt.Errorf("%w: pack header covers %d of %d bytes", ErrCorrupt, off, headerOffset)
	}
	return entries, nil
}

// ParsePackTrailer returns the length of the header ciphertext from the last
// trailerSize bytes of a pack of the given size.
func parsePackTrailer(trailer []byte, packSize int64) (int64, error) {
	if len(trailer) != trailerSize || !bytes.Equal(trailer[4:], packMagic) {
		return 0, fmt.Errorf("%w: not a cairn pack (bad trailer)", ErrCorrupt)
	}
	hl := int64(binary.LittleEndian.Uint32(trailer))
	if hl < crypto.Overhead+4 || hl > maxHeaderLen || hl > packSize-trailerSize {
		return 0, fmt.Errorf("%w: bad pack header length %d", ErrCorrupt, hl)
	}
	return hl, nil
}

// DecodePack parses a whole pack held in memory and returns its entries.
// It does not decrypt the blobs.
func DecodePack(keys *crypto.Keys, pack []byte) ([]BlobEntry, error) {
	size := int64(len(pack))
	if size < trailerSize {
		return nil, fmt.Errorf("%w: pack too short", ErrCorrupt)
	}
	hl, err := parsePackTrailer(pack[size-trailerSize:], size)
	if err != nil {
		return nil, err
	}
	hoff := size - trailerSize - hl
	pt, err := keys.Open(nil, pack[hoff:size-trailerSize], adHeader)
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	return parseHeaderPlain(pt, hoff)
}

// ReadPackHeader reads and decrypts the header of a stored pack without
// reading its blobs: what index rebuilds and checks use.
func (r *Repository) ReadPackHeader(ctx context.Context, id crypto.ID) ([]BlobEntry, int64, error) {
	h := store.Handle{Type: store.Pack, Name: id.String()}
	info, err := r.st.Stat(ctx, h)
	if err != nil {
		return nil, 0, err
	}
	if info.Size < trailerSize {
		return nil, info.Size, fmt.Errorf("pack %s: %w: too short", id.Short(), ErrCorrupt)
	}
	tr, err := store.ReadAt(ctx, r.st, h, info.Size-trailerSize, trailerSize)
	if err != nil {
		return nil, info.Size, err
	}
	hl, err := parsePackTrailer(tr, info.Size)
	if err != nil {
		return nil, info.Size, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	hoff := info.Size - trailerSize - hl
	ct, err := store.ReadAt(ctx, r.st, h, hoff, int(hl))
	if err != nil {
		return nil, info.Size, err
	}
	pt, err := r.keys.Open(nil, ct, adHeader)
	if err != nil {
		return nil, info.Size, fmt.Errorf("pack %s header: %w", id.Short(), ErrCorrupt)
	}
	entries, err := parseHeaderPlain(pt, hoff)
	if err != nil {
		return nil, info.Size, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	return entries, info.Size, nil
}
