package chunker

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
)

// The chunker benchmarks report MB/s; the Baseline benchmarks measure, on the
// same machine and data, a plain copy and SHA-256 (the blob hash's class of
// cost) so the chunker's speed can be read as a ratio.

const benchSize = 64 << 20

func benchChunker(b *testing.B, p Params, data []byte) {
	c := New(bytes.NewReader(data), p)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	chunks := 0
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			_, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			chunks++
		}
	}
	b.ReportMetric(float64(len(data))*float64(b.N)/float64(chunks), "B/chunk")
}

func BenchmarkChunker(b *testing.B) {
	data := randomBytes(1, benchSize)
	b.Run("default", func(b *testing.B) { benchChunker(b, DefaultParams(1), data) })
	b.Run("small", func(b *testing.B) { benchChunker(b, smallParams(1), data) })
	b.Run("zeros", func(b *testing.B) { benchChunker(b, DefaultParams(1), make([]byte, benchSize)) })
}

// BenchmarkCut measures the boundary search alone, without the reader copy.
func BenchmarkCut(b *testing.B) {
	data := randomBytes(2, 8<<20)
	c := New(nil, DefaultParams(1))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		for d := data; len(d) > 0; {
			d = d[c.cut(d):]
		}
	}
}

func BenchmarkBaselineCopy(b *testing.B) {
	data := randomBytes(3, benchSize)
	buf := make([]byte, 8<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		r := bytes.NewReader(data)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			}
		}
	}
}

func BenchmarkBaselineSHA256(b *testing.B) {
	data := randomBytes(4, 8<<20)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		sha256.Sum256(data)
	}
}
