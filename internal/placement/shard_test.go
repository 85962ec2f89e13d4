package placement

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"testing"
)

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestShardRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 7))
	for _, red := range []Redundancy{Erasure(1, 1), Erasure(2, 1), Erasure(3, 2), Erasure(4, 4), Erasure(10, 4), Erasure(16, 16)} {
		for _, size := range []int{0, 1, 2, 3, 4095, 4096, 100003} {
			pack := randBytes(rnd, size)
			id := sha256.Sum256(pack)
			shards, err := EncodeShards(id, pack, red)
			if err != nil {
				t.Fatal(err)
			}
			if len(shards) != red.Pieces() {
				t.Fatalf("%s: %d shards", red, len(shards))
			}
			for i, s := range shards {
				if int64(len(s)) != ShardObjectSize(int64(size), red) {
					t.Fatalf("%s size %d: shard %d is %d bytes, want %d", red, size, i, len(s), ShardObjectSize(int64(size), red))
				}
				h, err := ParseShardHeader(s)
				if err != nil || h.Index != i || h.PackID != id || h.PackSize != int64(size) {
					t.Fatalf("header of shard %d: %+v %v", i, h, err)
				}
			}
			// Lose M shards (a different set each time): still decodes.
			lost := rnd.Perm(red.Pieces())[:red.Parity]
			kept := make([][]byte, len(shards))
			copy(kept, shards)
			for _, i := range lost {
				kept[i] = nil
			}
			got, err := DecodeShards(id, kept)
			if err != nil || !bytes.Equal(got, pack) {
				t.Fatalf("%s size %d losing %v: %v", red, size, lost, err)
			}
			// One more lost: unrecoverable.
			for i := range kept {
				if kept[i] != nil {
					kept[i] = nil
					break
				}
			}
			if _, err := DecodeShards(id, kept); !errors.Is(err, ErrUnrecoverable) {
				t.Fatalf("%s with K-1 shards: %v", red, err)
			}
			// Deterministic.
			again, _ := EncodeShards(id, pack, red)
			for i := range again {
				if !bytes.Equal(again[i], shards[i]) {
					t.Fatalf("%s: encoding is not deterministic", red)
				}
			}
		}
	}
}

func TestDecodeSkipsBadShards(t *testing.T) {
	rnd := rand.New(rand.NewPCG(8, 8))
	pack := randBytes(rnd, 50000)
	id := sha256.Sum256(pack)
	shards, _ := EncodeShards(id, pack, Erasure(3, 2))
	// A flipped payload byte in one shard, a forged header hash list in
	// another: three good ones remain.
	shards[0][len(shards[0])-1] ^= 1
	shards[1][shardFixedHeader+5] ^= 1
	got, err := DecodeShards(id, shards)
	if err != nil || !bytes.Equal(got, pack) {
		t.Fatalf("decode with two bad shards: %v", err)
	}
	// A wholly consistent forgery (re-encoded other data under this pack ID)
	// never decodes to the pack.
	forged, _ := EncodeShards(id, randBytes(rnd, 50000), Erasure(3, 2))
	if _, err := DecodeShards(id, forged); !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("forged shards: %v", err)
	}
	mixed := [][]byte{forged[0], forged[1], forged[2], shards[2], shards[3], shards[4]}
	got, err = DecodeShards(id, mixed)
	if err != nil || !bytes.Equal(got, pack) {
		t.Fatalf("decode with forged shards among good ones: %v", err)
	}
}

func TestShardName(t *testing.T) {
	id := "3f0c000000000000000000000000000000000000000000000000000000009a01"
	name := ShardName(id, Erasure(3, 2), 4)
	if name != id+"-k3m2-s04" {
		t.Fatalf("name %s", name)
	}
	gid, red, i, ok := ParseShardName(name)
	if !ok || gid != id || red != Erasure(3, 2) || i != 4 {
		t.Fatalf("parse %s: %s %s %d %v", name, gid, red, i, ok)
	}
	for _, bad := range []string{id, id + "-k3m2-s05", id + "-k3m2-s4", id + "-k3m0-s01", id + "-k03m2-s01", "xyz-k3m2-s01", id + "-k3m2-s01-x", id[:63] + "G-k3m2-s01"} {
		if _, _, _, ok := ParseShardName(bad); ok {
			t.Errorf("ParseShardName(%q) accepted", bad)
		}
	}
}

func FuzzShardName(f *testing.F) {
	f.Add("3f0c000000000000000000000000000000000000000000000000000000009a01-k3m2-s04")
	f.Add("x-k1m1-s00")
	f.Fuzz(func(t *testing.T, name string) {
		id, red, i, ok := ParseShardName(name)
		if !ok {
			return
		}
		if red.Validate() != nil || !red.Coded() || i < 0 || i >= red.Pieces() || ShardName(id, red, i) != name {
			t.Fatalf("accepted %q as %s %s %d", name, id, red, i)
		}
	})
}

func FuzzShardHeader(f *testing.F) {
	pack := []byte("a small pack of bytes for the seed corpus")
	id := sha256.Sum256(pack)
	shards, _ := EncodeShards(id, pack, Erasure(3, 2))
	for _, s := range shards {
		f.Add(s)
	}
	f.Add([]byte("CRNS"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseShardHeader(b)
		if err != nil {
			return
		}
		if h.K < 1 || h.M < 1 || h.K+h.M > MaxPieces || h.Index >= h.K+h.M || len(h.Hashes) != h.K+h.M {
			t.Fatalf("accepted an invalid header %+v", h)
		}
		if h.Size() > len(b) {
			t.Fatalf("header size %d beyond %d bytes", h.Size(), len(b))
		}
		// Re-marshalled, it parses to the same header.
		out := make([]byte, h.Size())
		h.marshal(out)
		h2, err := ParseShardHeader(out)
		if err != nil || h2.K != h.K || h2.M != h.M || h2.Index != h.Index || h2.PackSize != h.PackSize || h2.PackID != h.PackID || h2.Len != h.Len {
			t.Fatalf("round trip: %+v %v", h2, err)
		}
		_, _ = DecodeShards(h.PackID, [][]byte{b})
		_, _, _ = checkShard(b)
	})
}
