package repo

import (
	"context"
	"fmt"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// CopiedBlob is a blob's stored ciphertext with its entry, as read from an
// existing pack, ready to be written into a new one unchanged.
type CopiedBlob struct {
	BlobEntry
	Ciphertext []byte
}

// WritePack stores the given blobs' ciphertexts, in order, as one new pack
// with a fresh encrypted header, and returns its index entry. The pack is
// not added to any index: prune writes the index once every new pack is
// stored. The ciphertext is copied as is, so it stays bound to the blob's
// type and ID; the caller should have authenticated it first (DecodeBlob).
func (r *Repository) WritePack(ctx context.Context, blobs []CopiedBlob) (IndexPack, error) {
	if len(blobs) == 0 {
		return IndexPack{}, fmt.Errorf("write pack: no blobs")
	}
	n := 0
	for _, b := range blobs {
		n += len(b.Ciphertext)
	}
	buf := make([]byte, 0, n+4+len(blobs)*headerEntrySize+crypto.Overhead+trailerSize)
	entries := make([]BlobEntry, 0, len(blobs))
	for _, b := range blobs {
		if len(b.Ciphertext) != int(b.Length) {
			return IndexPack{}, fmt.Errorf("write pack: blob %s: %d bytes of ciphertext, entry says %d", b.ID.Short(), len(b.Ciphertext), b.Length)
		}
		e := b.BlobEntry
		e.Offset = uint32(len(buf))
		buf = append(buf, b.Ciphertext...)
		entries = append(entries, e)
	}
	buf = append(buf, encodeHeader(r.keys, entries)...)
	id, err := r.putObject(ctx, store.Pack, buf)
	if err != nil {
		return IndexPack{}, fmt.Errorf("write pack %s: %w", id.Short(), err)
	}
	return IndexPack{ID: id, Size: int64(len(buf)), Blobs: entries}, nil
}
