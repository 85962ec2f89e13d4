package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// ErrFrameTooLarge is returned for a frame longer than MaxFrameSize, read
// or written. A peer that sends one is cut off.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrMalformed is wrapped by every error about bytes that do not decode to
// a valid message.
var ErrMalformed = errors.New("malformed message")

// Codec encodes and decodes messages with fixed, bounded options. It holds
// no mutable state and is safe for concurrent use.
type Codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// NewCodec builds the codec of the protocol.
func NewCodec() *Codec {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic("cbor encoder options: " + err.Error()) // fixed options
	}
	dec, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  6,
		MaxArrayElements: MaxObjects,
		MaxMapPairs:      16,
		UTF8:             cbor.UTF8RejectInvalid,
		IntDec:           cbor.IntDecConvertNone,
	}.DecMode()
	if err != nil {
		panic("cbor decoder options: " + err.Error()) // fixed options
	}
	return &Codec{enc: enc, dec: dec}
}

// Message is a wire message that can check its own bounds after decoding.
type Message interface {
	check() error
}

// Marshal encodes m.
func (c *Codec) Marshal(m Message) ([]byte, error) {
	b, err := c.enc.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", m, err)
	}
	if len(b) > MaxFrameSize {
		return nil, fmt.Errorf("encode %T: %w (%d bytes)", m, ErrFrameTooLarge, len(b))
	}
	return b, nil
}

// Unmarshal decodes b into m and checks its bounds. Trailing bytes are an
// error.
func (c *Codec) Unmarshal(b []byte, m Message) error {
	if len(b) > MaxFrameSize {
		return fmt.Errorf("decode %T: %w", m, ErrFrameTooLarge)
	}
	if err := c.dec.Unmarshal(b, m); err != nil {
		return fmt.Errorf("decode %T: %w: %v", m, ErrMalformed, err)
	}
	if err := m.check(); err != nil {
		return fmt.Errorf("decode %T: %w: %v", m, ErrMalformed, err)
	}
	return nil
}

// WriteMsg writes m as one frame: a 4-byte big-endian length, then the
// CBOR bytes.
func (c *Codec) WriteMsg(w io.Writer, m Message) error {
	b, err := c.Marshal(m)
	if err != nil {
		return err
	}
	return WriteFrame(w, b)
}

// ReadMsg reads one frame and decodes it into m.
func (c *Codec) ReadMsg(r io.Reader, m Message) error {
	b, err := ReadFrame(r)
	if err != nil {
		return err
	}
	return c.Unmarshal(b, m)
}

// WriteFrame writes payload with its length prefix in one write.
func WriteFrame(w io.Writer, payload []byte) error {
	if len(payload) > MaxFrameSize {
		return ErrFrameTooLarge
	}
	buf := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(buf, uint32(len(payload)))
	copy(buf[4:], payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// ReadFrame reads one length-prefixed frame. It refuses a length above
// MaxFrameSize before allocating anything, and an empty frame.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("read frame: %w (%d bytes announced)", ErrFrameTooLarge, n)
	}
	if n == 0 {
		return nil, fmt.Errorf("read frame: %w: empty frame", ErrMalformed)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("read frame body: %w", err)
	}
	return b, nil
}
