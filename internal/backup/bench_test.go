package backup_test

import (
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn/internal/backup"
)

// makeCorpus writes a small mixed tree: many small text files, a few
// medium ones, random and duplicated large files.
func makeCorpus(b *testing.B, dir string, scale int) int64 {
	b.Helper()
	rng := rand.New(rand.NewSource(1))
	var total int64
	write := func(p string, data []byte) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
	text := []byte("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor ")
	for i := 0; i < 500*scale; i++ {
		n := 200 + rng.Intn(8000)
		d := make([]byte, n)
		for j := range d {
			d[j] = text[(j+i)%len(text)]
		}
		write(filepath.Join(dir, "small", fmt.Sprint(i%50), fmt.Sprintf("f%d.txt", i)), d)
	}
	big := make([]byte, 8<<20*scale)
	rng.Read(big)
	write(filepath.Join(dir, "big", "random.bin"), big)
	write(filepath.Join(dir, "big", "copy.bin"), big)
	return total
}

func BenchmarkBackup(b *testing.B) {
	src := b.TempDir()
	total := makeCorpus(b, src, 2)
	b.Run("first", func(b *testing.B) {
		b.SetBytes(total)
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			r := newRepoB(b)
			b.StartTimer()
			if _, err := backup.Run(context.Background(), r, backup.Options{Paths: []string{src}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		r := newRepoB(b)
		if _, err := backup.Run(context.Background(), r, backup.Options{Paths: []string{src}}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(total)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := backup.Run(context.Background(), r, backup.Options{Paths: []string{src}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
