package placement

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/reedsolomon"
)

// Shard objects.
//
// With K+M redundancy a pack of S bytes is cut into K data shards of
// L = max(1, ceil(S/K)) bytes (the last one padded with zeros), and M
// parity shards of L bytes are computed with klauspost/reedsolomon
// (systematic Vandermonde code over GF(2^8), the library's default). Each
// shard travels as an object of its own, the pack's type ("data") and the
// name
//
//	<pack id>-k<K>m<M>-s<index, two digits>     e.g. 3f..9a-k3m2-s04
//
// so that shards of one pack coded with different settings never collide.
// The object is a header followed by the L payload bytes:
//
//	offset size    field
//	0      4       magic "CRNS"
//	4      1       version, 1
//	5      1       K, data shards (1..31)
//	6      1       M, parity shards (1..31), K+M <= 32
//	7      1       index of this shard, 0..K+M-1 (data shards first)
//	8      8       pack size S, uint64 big-endian
//	16     32      pack ID: SHA-256 of the pack
//	48     8       shard payload length L, uint64 big-endian
//	56     32*(K+M) SHA-256 of each shard's payload, by index
//
// Hosts see only this header and ciphertext. The host verifies the SHA-256
// of the whole object at put (the owner states it), the owner records it,
// and the hash list lets a reader who has no record (recovery from
// nothing) tell good shards from bad ones: a shard whose payload does not
// hash to its own entry is dropped, and shards are only decoded together
// with others that carry the same list; the decoded pack must hash to the
// pack ID, which settles any doubt.

const (
	shardMagic       = "CRNS"
	shardVersion     = 1
	shardFixedHeader = 56
)

// ErrShard is wrapped by errors about a malformed or inconsistent shard.
var ErrShard = errors.New("bad shard")

// ErrUnrecoverable says too few good pieces were found to rebuild a pack.
var ErrUnrecoverable = errors.New("not enough good pieces to rebuild the pack")

// ShardHeader is the parsed header of a shard object.
type ShardHeader struct {
	K, M     int
	Index    int
	PackSize int64
	PackID   [32]byte
	Len      int64      // payload length
	Hashes   [][32]byte // SHA-256 of every shard's payload
}

// Size returns the header's encoded size.
func (h *ShardHeader) Size() int { return shardFixedHeader + 32*(h.K+h.M) }

// ShardHeaderSize returns the header size of a shard of redundancy r.
func ShardHeaderSize(r Redundancy) int { return shardFixedHeader + 32*(r.Data+r.Parity) }

func (h *ShardHeader) marshal(dst []byte) {
	copy(dst, shardMagic)
	dst[4] = shardVersion
	dst[5] = byte(h.K)
	dst[6] = byte(h.M)
	dst[7] = byte(h.Index)
	binary.BigEndian.PutUint64(dst[8:], uint64(h.PackSize))
	copy(dst[16:48], h.PackID[:])
	binary.BigEndian.PutUint64(dst[48:], uint64(h.Len))
	for i, s := range h.Hashes {
		copy(dst[shardFixedHeader+32*i:], s[:])
	}
}

// ParseShardHeader parses the header at the start of b (b may hold the
// whole shard object or only its first bytes).
func ParseShardHeader(b []byte) (ShardHeader, error) {
	var h ShardHeader
	if len(b) < shardFixedHeader {
		return h, fmt.Errorf("%w: %d bytes, too short for a header", ErrShard, len(b))
	}
	if string(b[:4]) != shardMagic {
		return h, fmt.Errorf("%w: no shard magic", ErrShard)
	}
	if b[4] != shardVersion {
		return h, fmt.Errorf("%w: version %d, this cairn reads version %d", ErrShard, b[4], shardVersion)
	}
	h.K, h.M, h.Index = int(b[5]), int(b[6]), int(b[7])
	if err := Erasure(h.K, h.M).Validate(); err != nil {
		return h, fmt.Errorf("%w: %v", ErrShard, err)
	}
	if h.Index >= h.K+h.M {
		return h, fmt.Errorf("%w: index %d of %d shards", ErrShard, h.Index, h.K+h.M)
	}
	size := binary.BigEndian.Uint64(b[8:])
	plen := binary.BigEndian.Uint64(b[48:])
	if size > 1<<40 || plen > 1<<40 {
		return h, fmt.Errorf("%w: sizes out of range", ErrShard)
	}
	h.PackSize, h.Len = int64(size), int64(plen)
	if h.Len != shardLen(h.PackSize, h.K) {
		return h, fmt.Errorf("%w: payload of %d bytes for a pack of %d in %d shards", ErrShard, h.Len, h.PackSize, h.K)
	}
	copy(h.PackID[:], b[16:48])
	if len(b) < h.Size() {
		return h, fmt.Errorf("%w: %d bytes, header needs %d", ErrShard, len(b), h.Size())
	}
	h.Hashes = make([][32]byte, h.K+h.M)
	for i := range h.Hashes {
		copy(h.Hashes[i][:], b[shardFixedHeader+32*i:])
	}
	return h, nil
}

func shardLen(packSize int64, k int) int64 {
	return max(1, (packSize+int64(k)-1)/int64(k))
}

// ShardObjectSize returns the size of each shard object of a pack of
// packSize bytes under redundancy r.
func ShardObjectSize(packSize int64, r Redundancy) int64 {
	return int64(ShardHeaderSize(r)) + shardLen(packSize, r.Data)
}

// ShardName returns the object name of shard i of a pack.
func ShardName(packID string, r Redundancy, i int) string {
	return fmt.Sprintf("%s-k%dm%d-s%02d", packID, r.Data, r.Parity, i)
}

// ParseShardName splits a shard object name into the pack ID, the
// redundancy and the shard index.
func ParseShardName(name string) (packID string, r Redundancy, index int, ok bool) {
	id, rest, found := strings.Cut(name, "-")
	if !found || len(id) != 64 {
		return "", Redundancy{}, 0, false
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", Redundancy{}, 0, false
	}
	km, s, found := strings.Cut(rest, "-s")
	if !found || !strings.HasPrefix(km, "k") || len(s) != 2 {
		return "", Redundancy{}, 0, false
	}
	ks, ms, found := strings.Cut(km[1:], "m")
	if !found {
		return "", Redundancy{}, 0, false
	}
	k, err1 := strconv.Atoi(ks)
	m, err2 := strconv.Atoi(ms)
	i, err3 := strconv.Atoi(s)
	r = Erasure(k, m)
	if err1 != nil || err2 != nil || err3 != nil || r.Validate() != nil || i < 0 || i >= k+m {
		return "", Redundancy{}, 0, false
	}
	if ShardName(id, r, i) != name { // canonical form only
		return "", Redundancy{}, 0, false
	}
	return id, r, i, true
}

// EncodeShards cuts a pack into the K+M shard objects of redundancy r,
// each a header and its payload in one slice. packID is the pack's SHA-256.
// Encoding is deterministic: the same pack always gives the same shards.
func EncodeShards(packID [32]byte, pack []byte, r Redundancy) ([][]byte, error) {
	if !r.Coded() {
		return nil, fmt.Errorf("encode shards: %w: %s is not erasure coding", ErrRedundancy, r)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("encode shards: %w", err)
	}
	enc, err := reedsolomon.New(r.Data, r.Parity)
	if err != nil {
		return nil, fmt.Errorf("encode shards %s: %w", r, err)
	}
	n := r.Pieces()
	h := ShardHeader{K: r.Data, M: r.Parity, PackSize: int64(len(pack)), PackID: packID, Len: shardLen(int64(len(pack)), r.Data)}
	hs := h.Size()
	objs := make([][]byte, n)
	payloads := make([][]byte, n)
	for i := range objs {
		objs[i] = make([]byte, hs+int(h.Len))
		payloads[i] = objs[i][hs:]
	}
	rest := pack
	for i := 0; i < r.Data; i++ {
		k := copy(payloads[i], rest)
		rest = rest[k:]
	}
	if err := enc.Encode(payloads); err != nil {
		return nil, fmt.Errorf("encode shards %s: %w", r, err)
	}
	h.Hashes = make([][32]byte, n)
	for i, p := range payloads {
		h.Hashes[i] = sha256.Sum256(p)
	}
	for i := range objs {
		h.Index = i
		h.marshal(objs[i])
	}
	return objs, nil
}

// checkShard parses a whole shard object and checks that its payload
// matches its own header.
func checkShard(obj []byte) (ShardHeader, []byte, error) {
	h, err := ParseShardHeader(obj)
	if err != nil {
		return h, nil, err
	}
	payload := obj[h.Size():]
	if int64(len(payload)) != h.Len {
		return h, nil, fmt.Errorf("%w: payload of %d bytes, header says %d", ErrShard, len(payload), h.Len)
	}
	if sha256.Sum256(payload) != h.Hashes[h.Index] {
		return h, nil, fmt.Errorf("%w: shard %d does not match its hash", ErrShard, h.Index)
	}
	return h, payload, nil
}

// DecodeShards rebuilds the pack packID from shard objects (any K good
// ones of the same encoding suffice; bad ones are ignored). The result is
// verified against packID; ErrUnrecoverable is returned when no consistent
// set of K good shards decodes to it.
func DecodeShards(packID [32]byte, objs [][]byte) ([]byte, error) {
	type group struct {
		h        ShardHeader
		payloads [][]byte
		count    int
	}
	groups := map[string]*group{}
	var keys []string
	for _, obj := range objs {
		if obj == nil {
			continue
		}
		h, payload, err := checkShard(obj)
		if err != nil || h.PackID != packID {
			continue
		}
		var key bytes.Buffer
		fmt.Fprintf(&key, "%d/%d/%d/", h.K, h.M, h.PackSize)
		for _, s := range h.Hashes {
			key.Write(s[:])
		}
		g := groups[key.String()]
		if g == nil {
			g = &group{h: h, payloads: make([][]byte, h.K+h.M)}
			groups[key.String()] = g
			keys = append(keys, key.String())
		}
		if g.payloads[h.Index] == nil {
			g.payloads[h.Index] = payload
			g.count++
		}
	}
	sort.SliceStable(keys, func(a, b int) bool { return groups[keys[a]].count > groups[keys[b]].count })
	for _, k := range keys {
		g := groups[k]
		if g.count < g.h.K {
			break
		}
		pack, err := joinShards(g.h, g.payloads)
		if err == nil && sha256.Sum256(pack) == packID {
			return pack, nil
		}
	}
	return nil, fmt.Errorf("decode pack %x: %w", packID[:8], ErrUnrecoverable)
}

func joinShards(h ShardHeader, payloads [][]byte) ([]byte, error) {
	enc, err := reedsolomon.New(h.K, h.M)
	if err != nil {
		return nil, err
	}
	shards := make([][]byte, len(payloads))
	copy(shards, payloads)
	if err := enc.ReconstructData(shards); err != nil {
		return nil, err
	}
	pack := make([]byte, 0, h.PackSize)
	for i := 0; i < h.K && int64(len(pack)) < h.PackSize; i++ {
		need := min(int64(len(shards[i])), h.PackSize-int64(len(pack)))
		pack = append(pack, shards[i][:need]...)
	}
	if int64(len(pack)) != h.PackSize {
		return nil, fmt.Errorf("%w: decoded %d bytes, want %d", ErrShard, len(pack), h.PackSize)
	}
	return pack, nil
}
