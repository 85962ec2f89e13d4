package crypto

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// IDSize is the size of blob and object IDs.
const IDSize = 32

// ID identifies a blob (keyed BLAKE3 of its plaintext) or a stored object
// (SHA-256 of its bytes).
type ID [IDSize]byte

// Hash returns the object ID of stored bytes: their SHA-256, which anyone,
// a host without keys included, can check.
func Hash(data []byte) ID { return sha256.Sum256(data) }

// String is the lowercase hex form.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex characters, for people.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is all zero bytes.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a full 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*IDSize {
		return id, fmt.Errorf("invalid ID %q: want %d hex characters", s, 2*IDSize)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

// MarshalText implements encoding.TextMarshaler.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
