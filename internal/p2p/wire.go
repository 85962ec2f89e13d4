package p2p

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// Wire messages of cairn's node protocols (pairing, status): each is one
// CBOR map preceded by its length as a 4-byte big-endian integer, at most
// maxMessage bytes. The types below are the wire forms; the rest of the
// package works with the native types in peers.go and invite.go.
const maxMessage = 16 << 10

// ErrMessageTooLarge is returned for a message over maxMessage bytes.
var ErrMessageTooLarge = errors.New("message too large")

var (
	cborEnc cbor.EncMode
	cborDec cbor.DecMode
)

func init() {
	var err error
	cborEnc, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	cborDec, err = cbor.DecOptions{
		MaxNestedLevels:  8,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
		IndefLength:      cbor.IndefLengthForbidden,
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// pairHello opens a pairing: the joiner names the invite (by a tag derived
// from its secret) and sends its nonce.
type pairHello struct {
	Version int    `cbor:"1,keyasint"`
	Tag     []byte `cbor:"2,keyasint"`
	Nonce   []byte `cbor:"3,keyasint"`
}

// pairChallenge is the inviter's nonce.
type pairChallenge struct {
	Nonce []byte `cbor:"1,keyasint"`
	Error string `cbor:"2,keyasint,omitempty"`
}

// pairProof proves knowledge of the secret and introduces the sender.
type pairProof struct {
	MAC  []byte `cbor:"1,keyasint"`
	Info status `cbor:"2,keyasint"`
	// Error is set instead of MAC when the sender refuses.
	Error string `cbor:"3,keyasint,omitempty"`
}

// status is what a node tells its peers about itself (/cairn/status/1 and
// pairing).
type status struct {
	Name       string `cbor:"1,keyasint,omitempty"`
	OwnerID    string `cbor:"2,keyasint,omitempty"`
	OfferBytes int64  `cbor:"3,keyasint,omitempty"`
	FreeBytes  int64  `cbor:"4,keyasint,omitempty"`
	Cert       []byte `cbor:"5,keyasint,omitempty"`
}

func (s *status) check() error {
	if len(s.Name) > 64 || len(s.OwnerID) > 128 || len(s.Cert) > 4096 || s.OfferBytes < 0 || s.FreeBytes < 0 {
		return errors.New("status: field out of range")
	}
	return nil
}

func writeMsg(w io.Writer, v any) error {
	b, err := cborEnc.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode message: %w", err)
	}
	if len(b) > maxMessage {
		return ErrMessageTooLarge
	}
	buf := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	if _, err := w.Write(append(buf, b...)); err != nil {
		return fmt.Errorf("send message: %w", err)
	}
	return nil
}

func readMsg(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxMessage {
		return ErrMessageTooLarge
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	return decodeMsg(b, v)
}

func decodeMsg(b []byte, v any) error {
	if err := cborDec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	return nil
}
