package restore_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairn-backup/cairn/internal/restore"
)

// benchCorpus writes a source tree and returns its size in bytes.
func benchCorpus(b *testing.B, src, kind string) int64 {
	b.Helper()
	var total int64
	add := func(p string, data []byte) {
		writeFile(b, p, data, 0o644)
		total += int64(len(data))
	}
	switch kind {
	case "large":
		// Two large random files: restored in pieces by several workers.
		add(filepath.Join(src, "big1"), randBytes(1, 96<<20))
		add(filepath.Join(src, "big2"), randBytes(2, 32<<20))
	case "small":
		// Many small files in a few folders: restored in batches.
		for i := range 4000 {
			add(filepath.Join(src, fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%05d", i)), randBytes(uint64(i), 4<<10+i%(24<<10)))
		}
	}
	return total
}

// BenchmarkRestore reports restore throughput (MB/s of file content) from
// a local repository into a fresh folder, with every file synced.
func BenchmarkRestore(b *testing.B) {
	for _, kind := range []string{"large", "small"} {
		b.Run(kind, func(b *testing.B) {
			r, _ := newRepo(b)
			src := filepath.Join(b.TempDir(), "src")
			total := benchCorpus(b, src, kind)
			snap := backupPaths(b, r, src)
			base := b.TempDir()
			b.SetBytes(total)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				target := filepath.Join(base, fmt.Sprint(i))
				sum, err := restore.Run(context.Background(), r, snap, restore.Options{Target: target})
				if err != nil {
					b.Fatal(err)
				}
				if sum.Bytes != total {
					b.Fatalf("restored %d bytes, want %d", sum.Bytes, total)
				}
				b.StopTimer()
				os.RemoveAll(target)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkCopyBaseline copies the same trees file by file with a sync
// each, the yardstick BenchmarkRestore is measured against.
func BenchmarkCopyBaseline(b *testing.B) {
	for _, kind := range []string{"large", "small"} {
		b.Run(kind, func(b *testing.B) {
			src := filepath.Join(b.TempDir(), "src")
			total := benchCorpus(b, src, kind)
			base := b.TempDir()
			b.SetBytes(total)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				target := filepath.Join(base, fmt.Sprint(i))
				if err := copyTree(src, target); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(target)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkBackup is the backup of the same trees, for the ratio.
func BenchmarkBackup(b *testing.B) {
	for _, kind := range []string{"large", "small"} {
		b.Run(kind, func(b *testing.B) {
			src := filepath.Join(b.TempDir(), "src")
			total := benchCorpus(b, src, kind)
			b.SetBytes(total)
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				r, _ := newRepo(b)
				b.StartTimer()
				backupPaths(b, r, src)
			}
		})
	}
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		q := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(q, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(q)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
