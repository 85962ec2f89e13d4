// Package chunker splits a byte stream into content-defined chunks.
//
// It implements a FastCDC-class chunker: a gear rolling hash with normalized
// chunking (a stricter cut condition before the average size, a looser one
// after it) and skipping of the first Min bytes of every chunk. Boundaries
// depend only on the content since the previous boundary, so an insertion or
// deletion in the middle of a file changes only the chunks around it and
// deduplication survives shifted data.
//
// The gear table is derived deterministically from a 64-bit seed (see
// [Params.Seed]) which each repository keeps, encrypted, in its config. Two
// repositories with different seeds cut the same file at different places, so
// the sizes of stored chunks do not reveal which well-known file was stored.
//
// Compatibility: for given Params the boundaries this package produces are part
// of the repository format. Changing the gear table derivation, the masks or the
// cut rules would break deduplication against existing repositories; any such
// change needs a new repository format version.
package chunker

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Size limits accepted by [Params.Validate].
const (
	// MinSize is the smallest Min accepted.
	MinSize = 64
	// MaxSize is the largest Max accepted.
	MaxSize = 8 << 20
)

// Params are the chunking parameters of a repository.
type Params struct {
	// Min is the smallest chunk size; only the last chunk of a stream may be smaller.
	Min int
	// Avg is the target average chunk size; it must be a power of two. Chunks
	// before Avg are cut with a stricter condition (4× less likely per byte)
	// and after it with a looser one (4× more likely), so sizes cluster
	// around Avg; on random data with Min = Avg/4 the mean is about 1.15×Avg.
	Avg int
	// Max is the largest chunk size; a chunk is cut at Max if no boundary was found.
	Max int
	// Seed selects the gear table. Keep it secret: it is stored encrypted.
	Seed uint64
}

// DefaultParams returns the default parameters (Min 256 KiB, Avg 1 MiB,
// Max 4 MiB) with the given seed.
func DefaultParams(seed uint64) Params {
	return Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20, Seed: seed}
}

// ErrInvalidParams is wrapped by the errors [Params.Validate] returns.
var ErrInvalidParams = errors.New("invalid chunker parameters")

// Validate reports whether p describes a usable chunker: Avg a power of two,
// MinSize <= Min < Avg < Max <= MaxSize.
func (p Params) Validate() error {
	switch {
	case p.Avg <= 0 || p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("%w: average size %d is not a power of two", ErrInvalidParams, p.Avg)
	case p.Min < MinSize:
		return fmt.Errorf("%w: minimum size %d is below %d", ErrInvalidParams, p.Min, MinSize)
	case p.Min >= p.Avg:
		return fmt.Errorf("%w: minimum size %d is not below the average %d", ErrInvalidParams, p.Min, p.Avg)
	case p.Avg >= p.Max:
		return fmt.Errorf("%w: average size %d is not below the maximum %d", ErrInvalidParams, p.Avg, p.Max)
	case p.Max > MaxSize:
		return fmt.Errorf("%w: maximum size %d is above %d", ErrInvalidParams, p.Max, MaxSize)
	}
	return nil
}

// Chunk is one piece of the stream.
type Chunk struct {
	// Data is the chunk's content. It is only valid until the next call to
	// Next or Reset: copy it to keep it.
	Data []byte
	// Offset is the position of Data's first byte in the stream.
	Offset int64
}

// Chunker cuts the stream of one reader into chunks. It is not safe for
// concurrent use; use one Chunker per goroutine and Reset it between files.
type Chunker struct {
	r      io.Reader
	buf    []byte
	start  int   // first unconsumed byte in buf
	end    int   // end of valid data in buf
	offset int64 // stream offset of buf[start]
	eof    bool  // r returned io.EOF
	err    error // sticky read error, returned once buf is drained

	min, avg, max int
	maskS, maskL  uint64
	gear          *[256]uint64
	gearLS        *[256]uint64
}

// New returns a Chunker reading from r. It allocates its buffer (about twice
// p.Max) once; Reset reuses it. New panics if p is not valid: check
// user-supplied parameters with [Params.Validate] first.
func New(r io.Reader, p Params) *Chunker {
	if err := p.Validate(); err != nil {
		panic("chunker.New: " + err.Error())
	}
	gear, gearLS := gearTables(p.Seed)
	bitsAvg := bits.TrailingZeros(uint(p.Avg))
	c := &Chunker{
		buf:    make([]byte, 2*p.Max),
		min:    p.Min,
		avg:    p.Avg,
		max:    p.Max,
		maskS:  topMask(bitsAvg + 2),
		maskL:  topMask(bitsAvg - 2),
		gear:   gear,
		gearLS: gearLS,
	}
	c.Reset(r)
	return c
}

// Reset makes c read the next stream from r, reusing its buffer and tables.
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.start, c.end = 0, 0
	c.offset = 0
	c.eof = false
	c.err = nil
}

// Next returns the next chunk. It returns io.EOF after the last chunk (and at
// once for an empty stream). If the reader fails, Next returns its error (and
// keeps returning it): the chunks returned before are correct pieces of the
// stream, the data read after the last of them is dropped. The chunk's Data
// is valid until the next call to Next or Reset.
func (c *Chunker) Next() (Chunk, error) {
	if c.end-c.start < c.max && !c.eof && c.err == nil {
		c.fill()
	}
	if c.start == c.end && c.err == nil {
		return Chunk{}, io.EOF
	}
	if c.err != nil {
		// The data after the last boundary is incomplete: cutting it would
		// give chunks that differ from those of the whole stream.
		c.start = c.end
		return Chunk{}, c.err
	}
	data := c.buf[c.start:c.end]
	n := c.cut(data)
	ch := Chunk{Data: data[:n:n], Offset: c.offset}
	c.start += n
	c.offset += int64(n)
	return ch, nil
}

// fill moves unconsumed data to the front of the buffer and reads until the
// buffer is full, the reader is at EOF, or it fails.
func (c *Chunker) fill() {
	if c.start > 0 {
		c.end = copy(c.buf, c.buf[c.start:c.end])
		c.start = 0
	}
	empty := 0
	for c.end < len(c.buf) {
		n, err := c.r.Read(c.buf[c.end:])
		if n < 0 || n > len(c.buf)-c.end {
			c.err = errors.New("chunker: reader returned an invalid count")
			return
		}
		c.end += n
		if err == io.EOF {
			c.eof = true
			return
		}
		if err != nil {
			c.err = err
			return
		}
		if n == 0 {
			empty++
			if empty >= 100 {
				c.err = io.ErrNoProgress
				return
			}
		} else {
			empty = 0
		}
	}
}

// cut returns the length of the chunk at the start of data. data holds at
// least c.max bytes unless the stream ends within it.
func (c *Chunker) cut(data []byte) int {
	n := len(data)
	if n <= c.min {
		return n
	}
	if n > c.max {
		n = c.max
	}
	normal := c.avg
	if normal > n {
		normal = n
	}
	gear, gearLS := c.gear, c.gearLS
	maskS, maskL := c.maskS, c.maskL
	maskS1, maskL1 := maskS<<1, maskL<<1
	// The hash is rolled two bytes per step (the FastCDC 2020 trick):
	// after byte i the hash is h1 = h<<1 + gear[b_i]; after byte i+1 it is
	// h2 = h<<2 + gear[b_i]<<1 + gear[b_i+1]. The masks never include bit 63,
	// so h1&mask == 0 exactly when (h2-gear[b_i+1])&(mask<<1) == 0, which is
	// what the first test of each step checks via the shifted tables.
	var h uint64
	i := c.min
	// Even number of bytes per loop below; an odd leftover is rolled singly.
	s := data[:normal]
	for ; i+1 < len(s); i += 2 {
		h = h<<2 + gearLS[s[i]]
		if h&maskS1 == 0 {
			return i + 1
		}
		h += gear[s[i+1]]
		if h&maskS == 0 {
			return i + 2
		}
	}
	if i < len(s) {
		h = h<<1 + gear[s[i]]
		if h&maskS == 0 {
			return i + 1
		}
		i++
	}
	s = data[:n]
	for ; i+1 < len(s); i += 2 {
		h = h<<2 + gearLS[s[i]]
		if h&maskL1 == 0 {
			return i + 1
		}
		h += gear[s[i+1]]
		if h&maskL == 0 {
			return i + 2
		}
	}
	if i < len(s) {
		h = h<<1 + gear[s[i]]
		if h&maskL == 0 {
			return i + 1
		}
	}
	return n
}

// topMask returns a mask of the n bits just below bit 63 (bits 62 down to
// 63-n). High bits of a left-shifting gear hash depend on the last 60-odd
// bytes, so a boundary depends on a window of that size; bit 63 is left out
// so that the two-bytes-per-step loop in cut can test the shifted mask.
func topMask(n int) uint64 {
	return ((uint64(1) << n) - 1) << (63 - n)
}

// gearTables derives the gear table and its one-bit-left-shifted copy from
// seed with SplitMix64, a fixed and well-known generator.
func gearTables(seed uint64) (*[256]uint64, *[256]uint64) {
	var g, ls [256]uint64
	x := seed
	for i := range g {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		g[i] = z
		ls[i] = z << 1
	}
	return &g, &ls
}
