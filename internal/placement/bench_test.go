package placement

import (
	"crypto/sha256"
	"math/rand/v2"
	"testing"

	"github.com/cairn-backup/cairn/internal/store"
)

const benchPack = 16 << 20

func BenchmarkEncodeShards(b *testing.B) {
	pack := randBytes(rand.New(rand.NewPCG(1, 1)), benchPack)
	id := sha256.Sum256(pack)
	for _, red := range []Redundancy{Erasure(2, 1), Erasure(3, 2), Erasure(6, 3), Erasure(10, 4)} {
		b.Run(red.String(), func(b *testing.B) {
			b.SetBytes(benchPack)
			for b.Loop() {
				if _, err := EncodeShards(id, pack, red); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeShards decodes with the first M shards (data shards)
// lost, the worst case; decoding includes every hash check.
func BenchmarkDecodeShards(b *testing.B) {
	pack := randBytes(rand.New(rand.NewPCG(1, 1)), benchPack)
	id := sha256.Sum256(pack)
	for _, red := range []Redundancy{Erasure(2, 1), Erasure(3, 2), Erasure(6, 3), Erasure(10, 4)} {
		b.Run(red.String(), func(b *testing.B) {
			shards, _ := EncodeShards(id, pack, red)
			for i := 0; i < red.Parity; i++ {
				shards[i] = nil
			}
			b.SetBytes(benchPack)
			for b.Loop() {
				if _, err := DecodeShards(id, shards); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSyncBytesSent places packs on 6 in-memory hosts and reports
// bytes sent per byte of pack ("sent/B"): the network cost of each
// redundancy setting, headers and metadata included. MB/s is the
// placement throughput (encoding, hashing, Merkle roots, record) with a
// network that costs nothing.
func BenchmarkSyncBytesSent(b *testing.B) {
	for _, red := range []Redundancy{Replicas(1), Replicas(2), Replicas(3), Erasure(2, 1), Erasure(3, 2), Erasure(4, 2)} {
		b.Run(red.String(), func(b *testing.B) {
			const packs, size = 4, 4 << 20
			var sent, stored int64
			b.SetBytes(packs * size)
			for b.Loop() {
				b.StopTimer()
				v := newEnv(b, 6, red)
				v.populate(packs, size)
				stored = 0
				for h, d := range v.repo.objs {
					if h.Type == store.Pack {
						stored += int64(len(d))
					}
				}
				b.StartTimer()
				sum, err := v.e.Sync(v.ctx, v.repo, v.cands(), SyncOptions{})
				if err != nil || sum.Placed != packs {
					b.Fatalf("sync: %+v %v", sum, err)
				}
				sent = sum.BytesSent
			}
			b.ReportMetric(float64(sent)/float64(stored), "sent/B")
		})
	}
}

// BenchmarkRestore reads 16 MiB packs back through a Store from 6
// in-memory hosts (fetch, verify, decode).
func BenchmarkRestore(b *testing.B) {
	for _, red := range []Redundancy{Replicas(2), Erasure(3, 2)} {
		b.Run(red.String(), func(b *testing.B) {
			v := newEnv(b, 6, red)
			packs := v.populate(2, benchPack)
			if _, err := v.e.Sync(v.ctx, v.repo, v.cands(), SyncOptions{}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(benchPack)
			i := 0
			for b.Loop() {
				s := NewStore(v.e, v.cands, StoreOptions{CacheBytes: 1}) // no cache hits
				if _, err := store.ReadAll(v.ctx, s, packs[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
