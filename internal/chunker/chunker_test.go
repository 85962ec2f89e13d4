package chunker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(seed uint64, n int) []byte {
	var s [32]byte
	s[0], s[1], s[2], s[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	s[4], s[5], s[6], s[7] = byte(seed>>32), byte(seed>>40), byte(seed>>48), byte(seed>>56)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// smallParams scales the defaults down by 16 so tests see many chunks.
func smallParams(seed uint64) Params {
	return Params{Min: 16 << 10, Avg: 64 << 10, Max: 256 << 10, Seed: seed}
}

// chunkAll returns the lengths of all chunks of r and checks that the chunks
// are contiguous and concatenate to want.
func chunkAll(t testing.TB, r io.Reader, p Params, want []byte) []int {
	t.Helper()
	c := New(r, p)
	var sizes []int
	var off int64
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if ch.Offset != off {
			t.Fatalf("chunk %d: offset %d, want %d", len(sizes), ch.Offset, off)
		}
		if want != nil && !bytes.Equal(ch.Data, want[off:off+int64(len(ch.Data))]) {
			t.Fatalf("chunk %d at %d: data differs from input", len(sizes), off)
		}
		off += int64(len(ch.Data))
		sizes = append(sizes, len(ch.Data))
	}
	if want != nil && off != int64(len(want)) {
		t.Fatalf("chunks cover %d bytes, input has %d", off, len(want))
	}
	return sizes
}

// referenceCut is the textbook one-byte-per-step FastCDC cut, used to check
// the two-bytes-per-step loop in cut.
func referenceCut(data []byte, p Params) int {
	n := len(data)
	if n <= p.Min {
		return n
	}
	if n > p.Max {
		n = p.Max
	}
	normal := min(p.Avg, n)
	gear, _ := gearTables(p.Seed)
	b := 0
	for v := p.Avg; v > 1; v >>= 1 {
		b++
	}
	maskS, maskL := topMask(b+2), topMask(b-2)
	var h uint64
	for i := p.Min; i < n; i++ {
		h = h<<1 + gear[data[i]]
		mask := maskL
		if i < normal {
			mask = maskS
		}
		if h&mask == 0 {
			return i + 1
		}
	}
	return n
}

func referenceSizes(data []byte, p Params) []int {
	var sizes []int
	for len(data) > 0 {
		n := referenceCut(data, p)
		sizes = append(sizes, n)
		data = data[n:]
	}
	return sizes
}

func TestMatchesReference(t *testing.T) {
	for _, p := range []Params{
		smallParams(1),
		smallParams(0xdeadbeef),
		{Min: 64, Avg: 256, Max: 1024, Seed: 7},
		{Min: 65, Avg: 512, Max: 1001, Seed: 8}, // odd sizes exercise the leftover byte
		DefaultParams(42),
	} {
		t.Run(fmt.Sprintf("%d-%d-%d", p.Min, p.Avg, p.Max), func(t *testing.T) {
			data := randomBytes(p.Seed, 20*p.Max+123)
			got := chunkAll(t, bytes.NewReader(data), p, data)
			want := referenceSizes(data, p)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("sizes differ from the reference cut:\n got %v\nwant %v", got, want)
			}
		})
	}
}

// TestGolden pins the boundaries for fixed parameters: they are part of the
// repository format, and a change here breaks dedup with existing repositories.
func TestGolden(t *testing.T) {
	data := randomBytes(1, 16<<20)
	sizes := chunkAll(t, bytes.NewReader(data), DefaultParams(0x0123456789abcdef), data)
	got := fmt.Sprint(sizes)
	const want = "[1119768 1262288 1231849 324002 1509608 1069937 1189991 281659 1266251 1101132 1270312 1195630 1088130 1186204 1058008 622447]"
	if got != want {
		t.Fatalf("boundaries changed:\n got %s\nwant %s", got, want)
	}
}

// randomSizeReader returns between 1 and max bytes per Read.
type randomSizeReader struct {
	r   io.Reader
	rng *rand.Rand
	max int
}

func (r *randomSizeReader) Read(p []byte) (int, error) {
	n := 1 + r.rng.IntN(r.max)
	if n < len(p) {
		p = p[:n]
	}
	return r.r.Read(p)
}

func TestIndependentOfReadSizes(t *testing.T) {
	p := smallParams(99)
	data := randomBytes(2, 3<<20+17)
	want := chunkAll(t, bytes.NewReader(data), p, data)
	readers := map[string]func() io.Reader{
		"onebyte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		"half":    func() io.Reader { return iotest.HalfReader(bytes.NewReader(data)) },
		"dataerr": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(data)) },
		"random7": func() io.Reader { return &randomSizeReader{bytes.NewReader(data), rand.New(rand.NewPCG(1, 2)), 7} },
		"random64k": func() io.Reader {
			return &randomSizeReader{bytes.NewReader(data), rand.New(rand.NewPCG(3, 4)), 64 << 10}
		},
		"random1m": func() io.Reader {
			return &randomSizeReader{bytes.NewReader(data), rand.New(rand.NewPCG(5, 6)), 1 << 20}
		},
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			got := chunkAll(t, mk(), p, data)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("sizes depend on read sizes:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestSizeBounds(t *testing.T) {
	for _, p := range []Params{smallParams(5), DefaultParams(5), {Min: 64, Avg: 128, Max: 256, Seed: 5}} {
		t.Run(fmt.Sprintf("%d-%d-%d", p.Min, p.Avg, p.Max), func(t *testing.T) {
			// Random data, then zeros (no boundary found: cut at Max), then random again.
			data := append(randomBytes(3, 6*p.Max), make([]byte, 3*p.Max+5)...)
			data = append(data, randomBytes(4, 2*p.Max+11)...)
			sizes := chunkAll(t, bytes.NewReader(data), p, data)
			sawMax := false
			for i, n := range sizes {
				if n > p.Max || (n < p.Min && i != len(sizes)-1) {
					t.Errorf("chunk %d of %d has size %d, outside %d..%d", i, len(sizes), n, p.Min, p.Max)
				}
				sawMax = sawMax || n == p.Max
			}
			if !sawMax {
				t.Errorf("no chunk was cut at Max in a run of zeros: %v", sizes)
			}
		})
	}
}

func TestAverageSize(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		size int
	}{
		{smallParams(11), 64 << 20},
		{DefaultParams(11), 256 << 20},
	} {
		if testing.Short() && tc.size > 64<<20 {
			continue
		}
		t.Run(fmt.Sprint(tc.p.Avg), func(t *testing.T) {
			data := randomBytes(6, tc.size)
			sizes := chunkAll(t, bytes.NewReader(data), tc.p, nil)
			avg := float64(tc.size) / float64(len(sizes))
			t.Logf("%d chunks, average %.0f bytes (Avg %d)", len(sizes), avg, tc.p.Avg)
			if avg < 0.8*float64(tc.p.Avg) || avg > 1.4*float64(tc.p.Avg) {
				t.Errorf("average chunk size %.0f is far from %d", avg, tc.p.Avg)
			}
		})
	}
}

// chunkSet returns the SHA-256 of every chunk of data.
func chunkSet(t *testing.T, data []byte, p Params) map[[32]byte]int {
	t.Helper()
	set := make(map[[32]byte]int)
	c := New(bytes.NewReader(data), p)
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return set
		}
		if err != nil {
			t.Fatal(err)
		}
		set[sha256.Sum256(ch.Data)] = len(ch.Data)
	}
}

func TestInsertionChangesOnlyNearbyChunks(t *testing.T) {
	p := smallParams(21)
	data := randomBytes(7, 16<<20)
	before := chunkSet(t, data, p)
	for _, edit := range []struct {
		name string
		do   func([]byte) []byte
	}{
		{"insert", func(b []byte) []byte {
			mid := len(b) / 2
			return append(append(append([]byte{}, b[:mid]...), []byte("a few inserted bytes")...), b[mid:]...)
		}},
		{"delete", func(b []byte) []byte {
			mid := len(b) / 3
			return append(append([]byte{}, b[:mid]...), b[mid+1000:]...)
		}},
		{"prepend", func(b []byte) []byte { return append([]byte("shifted by a header\n"), b...) }},
	} {
		t.Run(edit.name, func(t *testing.T) {
			after := chunkSet(t, edit.do(data), p)
			newChunks, newBytes := 0, 0
			for h, n := range after {
				if _, ok := before[h]; !ok {
					newChunks++
					newBytes += n
				}
			}
			t.Logf("%d of %d chunks new (%d bytes)", newChunks, len(after), newBytes)
			if newChunks > 3 || newBytes > 3*p.Max {
				t.Errorf("an edit changed %d chunks (%d bytes); want at most 3", newChunks, newBytes)
			}
		})
	}
}

func TestSeedsDiffer(t *testing.T) {
	data := randomBytes(8, 8<<20)
	a := chunkAll(t, bytes.NewReader(data), smallParams(1), data)
	b := chunkAll(t, bytes.NewReader(data), smallParams(2), data)
	if fmt.Sprint(a) == fmt.Sprint(b) {
		t.Fatal("two seeds gave the same boundaries")
	}
	// Boundaries of one seed should rarely coincide with the other's.
	cuts := make(map[int]bool)
	off := 0
	for _, n := range a {
		off += n
		cuts[off] = true
	}
	same := 0
	off = 0
	for _, n := range b[:len(b)-1] {
		off += n
		if cuts[off] {
			same++
		}
	}
	if same > len(b)/10 {
		t.Errorf("%d of %d boundaries shared between seeds", same, len(b))
	}
}

func TestEmpty(t *testing.T) {
	c := New(bytes.NewReader(nil), smallParams(1))
	for range 2 {
		if ch, err := c.Next(); err != io.EOF || len(ch.Data) != 0 {
			t.Fatalf("Next on empty input = %d bytes, %v; want io.EOF", len(ch.Data), err)
		}
	}
}

func TestSmallInputIsOneChunk(t *testing.T) {
	for _, n := range []int{1, 100, 16 << 10, 16<<10 + 1} {
		data := randomBytes(9, n)
		sizes := chunkAll(t, bytes.NewReader(data), smallParams(1), data)
		if n <= 16<<10 && len(sizes) != 1 {
			t.Errorf("%d bytes gave %d chunks, want 1", n, len(sizes))
		}
	}
}

func TestReset(t *testing.T) {
	p := smallParams(3)
	a, b := randomBytes(10, 1<<20+5), randomBytes(11, 700<<10)
	c := New(bytes.NewReader(a), p)
	buf := &c.buf[0]
	// Stop half-way through a, then chunk b: nothing of a may leak into b.
	if _, err := c.Next(); err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{b, a, nil, b} {
		c.Reset(bytes.NewReader(data))
		var got []byte
		var sizes []int
		for {
			ch, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ch.Data...)
			sizes = append(sizes, len(ch.Data))
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("after Reset the chunks do not match the input")
		}
		if want := referenceSizes(data, p); fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Fatalf("after Reset sizes %v, want %v", sizes, want)
		}
	}
	if &c.buf[0] != buf {
		t.Error("Reset allocated a new buffer")
	}
}

func TestReadError(t *testing.T) {
	p := smallParams(4)
	data := randomBytes(12, 2<<20)
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(data), iotest.ErrReader(boom))
	c := New(r, p)
	var got []byte
	for {
		ch, err := c.Next()
		if errors.Is(err, boom) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v, want %v", err, boom)
		}
		got = append(got, ch.Data...)
	}
	if !bytes.HasPrefix(data, got) {
		t.Fatal("chunks before the error are not a prefix of the input")
	}
	if _, err := c.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next after an error = %v, want the error again", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	c := New(zeroReader{}, smallParams(1))
	if _, err := c.Next(); !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("Next = %v, want io.ErrNoProgress", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{DefaultParams(0), true},
		{smallParams(0), true},
		{Params{Min: 64, Avg: 128, Max: 129}, true},
		{Params{Min: 2 << 20, Avg: 4 << 20, Max: 8 << 20}, true},
		{Params{Min: 256 << 10, Avg: 1<<20 + 1, Max: 4 << 20}, false}, // not a power of two
		{Params{Min: 1 << 20, Avg: 1 << 20, Max: 4 << 20}, false},     // Min == Avg
		{Params{Min: 256 << 10, Avg: 4 << 20, Max: 4 << 20}, false},   // Avg == Max
		{Params{Min: 256 << 10, Avg: 1 << 20, Max: 16 << 20}, false},  // Max too large
		{Params{Min: 0, Avg: 1 << 20, Max: 4 << 20}, false},           // Min too small
		{Params{Min: 32, Avg: 64, Max: 128}, false},                   // Min too small
		{Params{Min: 64, Avg: 0, Max: 128}, false},
		{Params{Min: 64, Avg: -128, Max: 128}, false},
		{Params{}, false},
	} {
		err := tc.p.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.p, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidParams) {
			t.Errorf("Validate(%+v) = %v, does not wrap ErrInvalidParams", tc.p, err)
		}
	}
}

func TestNewPanicsOnInvalidParams(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("New accepted invalid parameters")
		}
	}()
	New(bytes.NewReader(nil), Params{})
}

func FuzzChunker(f *testing.F) {
	f.Add([]byte("hello, world"), uint64(0), uint8(0), uint8(0), uint16(7))
	f.Add(randomBytes(1, 5000), uint64(1), uint8(1), uint8(2), uint16(1))
	f.Add(make([]byte, 3000), uint64(2), uint8(0), uint8(0), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, seed uint64, avgShift, maxShift uint8, readSize uint16) {
		if len(data) > 64<<10 {
			data = data[:64<<10] // keeps each run fast; the params are small anyway
		}
		avg := 128 << (avgShift % 4) // 128..1024
		p := Params{Min: 64 + int(seed%uint64(avg-64)), Avg: avg, Seed: seed}
		p.Max = avg + 1 + int(maxShift)*37 // Avg+1 .. Avg+9436
		if err := p.Validate(); err != nil {
			t.Fatalf("fuzz built invalid params %+v: %v", p, err)
		}
		var r io.Reader = bytes.NewReader(data)
		if readSize > 0 {
			r = &randomSizeReader{r, rand.New(rand.NewPCG(seed, uint64(readSize))), int(readSize)}
		}
		sizes := chunkAll(t, r, p, data)
		for i, n := range sizes {
			if n > p.Max || n == 0 || (n < p.Min && i != len(sizes)-1) {
				t.Fatalf("chunk %d of %d has size %d, outside %d..%d", i, len(sizes), n, p.Min, p.Max)
			}
		}
		if want := referenceSizes(data, p); fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Fatalf("sizes %v differ from the reference %v", sizes, want)
		}
	})
}
