package wire

import (
	"encoding/hex"
	"fmt"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// ObjectOf converts a handle to its wire form.
func ObjectOf(h store.Handle) Object { return Object{Type: string(h.Type), Name: h.Name} }

// Handle converts a wire object to a handle, refusing any that
// store.Handle.Valid refuses. Names of erasure-coded shards carry a suffix
// (for example "<pack id>-s03"), which Valid accepts.
func (o Object) Handle() (store.Handle, error) {
	h := store.Handle{Type: store.Type(o.Type), Name: o.Name}
	if err := h.Valid(); err != nil {
		return store.Handle{}, fmt.Errorf("%w: %v", ErrBadRequest, err)
	}
	return h, nil
}

// ContentID returns the SHA-256 a handle's name promises, if the name is
// one: keys, data, index and snapshot objects named by 64 lowercase hex
// characters are content-addressed and any host can check them. Other
// objects (config, locks, shards) need the hash stated in the put request.
func ContentID(h store.Handle) (crypto.ID, bool) {
	switch h.Type {
	case store.Key, store.Pack, store.Index, store.Snapshot:
	default:
		return crypto.ID{}, false
	}
	if len(h.Name) != 2*crypto.IDSize {
		return crypto.ID{}, false
	}
	var id crypto.ID
	if _, err := hex.Decode(id[:], []byte(h.Name)); err != nil || hex.EncodeToString(id[:]) != h.Name {
		return crypto.ID{}, false
	}
	return id, true
}
