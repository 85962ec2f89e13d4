package repo_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store/local"
)

// The stage benchmarks report MB/s on one core for 1 MiB blobs, the
// average chunk size, so each stage can be compared with the whole pipeline
// (internal/backup BenchmarkBackup).

func blob(compressible bool) []byte {
	b := make([]byte, 1<<20)
	if compressible {
		words := []byte("the quick brown fox jumps over the lazy dog 0123456789 ")
		for i := range b {
			b[i] = words[(i*7+i/13)%len(words)]
		}
		return b
	}
	rand.Read(b)
	return b
}

func BenchmarkBlobID(b *testing.B) {
	mk, _ := crypto.NewMasterKey()
	k := crypto.Derive(mk)
	d := blob(false)
	b.SetBytes(int64(len(d)))
	for i := 0; i < b.N; i++ {
		k.BlobID(d)
	}
}

func BenchmarkSHA256(b *testing.B) {
	d := blob(false)
	b.SetBytes(int64(len(d)))
	for i := 0; i < b.N; i++ {
		sha256.Sum256(d)
	}
}

func BenchmarkSeal(b *testing.B) {
	mk, _ := crypto.NewMasterKey()
	k := crypto.Derive(mk)
	d := blob(false)
	out := make([]byte, 0, len(d)+crypto.Overhead)
	b.SetBytes(int64(len(d)))
	for i := 0; i < b.N; i++ {
		out = k.Seal(out[:0], d, []byte("ad"))
	}
}

func BenchmarkCompressSeal(b *testing.B) {
	mk, _ := crypto.NewMasterKey()
	k := crypto.Derive(mk)
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderCRC(false), zstd.WithWindowSize(512<<10), zstd.WithEncoderConcurrency(1))
	d := blob(true)
	var c, out []byte
	b.SetBytes(int64(len(d)))
	for i := 0; i < b.N; i++ {
		c = enc.EncodeAll(d, c[:0])
		out = k.Seal(out[:0], c, []byte("ad"))
	}
}

// BenchmarkSaveBlob measures the saver: compression decision, encryption
// and pack writing to a local store, with flushing.
func BenchmarkSaveBlob(b *testing.B) {
	for _, tc := range []struct {
		name string
		comp bool
	}{{"random", false}, {"text", true}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := local.Create(filepath.Join(b.TempDir(), "repo"))
			if err != nil {
				b.Fatal(err)
			}
			r, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &cheap})
			if err != nil {
				b.Fatal(err)
			}
			d := blob(tc.comp)
			b.SetBytes(int64(len(d)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d[0], d[1], d[2] = byte(i), byte(i>>8), byte(i>>16) // a new blob each time
				if _, err := r.SaveBlob(ctx, repo.DataBlob, r.Keys().BlobID(d), d); err != nil {
					b.Fatal(err)
				}
			}
			if err := r.Flush(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
