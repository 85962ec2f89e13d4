package wire

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

func TestRoundTrip(t *testing.T) {
	c := NewCodec()
	hash := make([]byte, 32)
	msgs := []struct {
		in, out Message
	}{
		{&Challenge{Nonce: make([]byte, NonceSize)}, &Challenge{}},
		{&Request{Auth: Auth{OwnerPub: make([]byte, 32), Sig: make([]byte, 64)}, Body: []byte{1}}, &Request{}},
		{&OfferReq{Bytes: 10, Until: 1000}, &OfferReq{}},
		{&PutReq{Object: Object{"data", "ab"}, Size: 5, Hash: hash, Until: 7}, &PutReq{}},
		{&GetResp{Code: CodeOK, Length: 3, Size: 5, Hash: hash}, &GetResp{}},
		{&HasResp{Entries: []Entry{{Object: Object{"index", "x"}, Size: 1, Hash: hash, Until: 2}}, More: true}, &HasResp{}},
		{&AuditResp{Size: 9, Leaves: []AuditLeaf{{Index: 0, Data: []byte("abc"), Path: [][]byte{hash}}}}, &AuditResp{}},
	}
	for _, m := range msgs {
		t.Run(fmt.Sprintf("%T", m.in), func(t *testing.T) {
			var buf bytes.Buffer
			if err := c.WriteMsg(&buf, m.in); err != nil {
				t.Fatal(err)
			}
			if err := c.ReadMsg(&buf, m.out); err != nil {
				t.Fatal(err)
			}
			a, _ := c.Marshal(m.in)
			b, _ := c.Marshal(m.out)
			if !bytes.Equal(a, b) {
				t.Fatalf("round trip changed the message: %x != %x", a, b)
			}
		})
	}
}

func TestFrameLimits(t *testing.T) {
	c := NewCodec()
	// An announced length above the limit is refused before reading on.
	hdr := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := ReadFrame(bytes.NewReader(hdr)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized frame: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty frame: %v", err)
	}
	// A message over the limit is not written.
	big := &Request{Auth: Auth{OwnerPub: make([]byte, 32), Sig: make([]byte, 64)}, Body: make([]byte, MaxFrameSize)}
	if err := c.WriteMsg(&bytes.Buffer{}, big); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversized write: %v", err)
	}
	// Bounds are checked after decoding.
	b, _ := c.enc.Marshal(&Challenge{Nonce: []byte{1, 2}})
	if err := c.Unmarshal(b, &Challenge{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short nonce: %v", err)
	}
	many := &DeleteReq{Objects: make([]Object, MaxObjects+1)}
	b, _ = c.enc.Marshal(many)
	if err := c.Unmarshal(b, &DeleteReq{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too many objects: %v", err)
	}
}

func TestErrorCodes(t *testing.T) {
	for code := CodeBadRequest; code < codeEnd; code++ {
		err := code.Err("why")
		if CodeOf(err) != code {
			t.Errorf("code %d: round trip gave %d", code, CodeOf(err))
		}
		if CodeOf(fmt.Errorf("wrapped: %w", codeErrs[code])) != code {
			t.Errorf("code %d: sentinel not mapped", code)
		}
	}
	if !errors.Is(CodeNotFound.Err(""), store.ErrNotFound) {
		t.Error("not found does not match store.ErrNotFound")
	}
	if CodeOf(errors.New("other")) != CodeInternal || CodeOf(nil) != CodeOK {
		t.Error("default codes")
	}
}

func TestContentID(t *testing.T) {
	id := crypto.Hash([]byte("x"))
	tests := []struct {
		h    store.Handle
		want bool
	}{
		{store.Handle{Type: store.Pack, Name: id.String()}, true},
		{store.Handle{Type: store.Snapshot, Name: id.String()}, true},
		{store.Handle{Type: store.Pack, Name: id.String() + "-s01"}, false},
		{store.Handle{Type: store.Config, Name: "config"}, false},
		{store.Handle{Type: store.Lock, Name: id.String()}, false},
		{store.Handle{Type: store.Pack, Name: "AB" + id.String()[2:]}, false},
	}
	for _, tt := range tests {
		got, ok := ContentID(tt.h)
		if ok != tt.want || (ok && got != id) {
			t.Errorf("%s: got %v %v", tt.h, got, ok)
		}
	}
}

func TestMerkle(t *testing.T) {
	for _, size := range []int{0, 1, LeafSize - 1, LeafSize, LeafSize + 1, 3 * LeafSize, 5*LeafSize + 17, 64 * LeafSize, 100*LeafSize + 3} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := make([]byte, size)
			rand.Read(data)
			root := MerkleRoot(data)
			// Streaming in odd pieces gives the same root.
			m := NewMerkleHasher()
			for p := data; len(p) > 0; {
				k := min(len(p), 1000+len(p)%3000)
				m.Write(p[:k])
				p = p[k:]
			}
			if m.Root() != root {
				t.Fatal("streamed root differs")
			}
			n := LeafCount(int64(size))
			idx := []uint64{0, n - 1, n / 2}
			paths, err := m.Paths(idx)
			if err != nil {
				t.Fatal(err)
			}
			for k, i := range idx {
				leaf := data[min(int(i)*LeafSize, size):min(int(i+1)*LeafSize, size)]
				if err := VerifyLeaf(root, int64(size), i, leaf, paths[k]); err != nil {
					t.Fatalf("leaf %d: %v", i, err)
				}
				if len(leaf) > 0 {
					bad := bytes.Clone(leaf)
					bad[0] ^= 1
					if VerifyLeaf(root, int64(size), i, bad, paths[k]) == nil {
						t.Fatalf("leaf %d: flipped byte accepted", i)
					}
				}
				if VerifyLeaf(root, int64(size)+1, i, leaf, paths[k]) == nil {
					t.Fatalf("leaf %d: wrong size accepted", i)
				}
				if n > 1 && VerifyLeaf(root, int64(size), i^1, leaf, paths[k]) == nil && LeafLen(int64(size), i^1) == len(leaf) {
					t.Fatalf("leaf %d: accepted at another index", i)
				}
			}
		})
	}
}

// The largest answers the protocol allows must fit in one frame.
func TestLargestMessagesFit(t *testing.T) {
	c := NewCodec()
	name := string(bytes.Repeat([]byte("a"), maxNameLen))
	resp := &HasResp{Code: CodeOK, More: true}
	for range MaxObjects {
		resp.Entries = append(resp.Entries, Entry{Object: Object{"snapshots", name}, Size: MaxObjectSize, Hash: make([]byte, 32), Until: 253402300799})
	}
	if _, err := c.Marshal(resp); err != nil {
		t.Fatalf("full has answer: %v", err)
	}
	audit := &AuditResp{Size: MaxObjectSize}
	for range MaxAuditLeaves {
		audit.Leaves = append(audit.Leaves, AuditLeaf{Index: 1 << 40, Data: make([]byte, LeafSize), Path: make([][]byte, 24)})
		for i := range audit.Leaves[len(audit.Leaves)-1].Path {
			audit.Leaves[len(audit.Leaves)-1].Path[i] = make([]byte, 32)
		}
	}
	if _, err := c.Marshal(audit); err != nil {
		t.Fatalf("full audit answer: %v", err)
	}
	del := &DeleteReq{}
	for range MaxObjects {
		del.Objects = append(del.Objects, Object{"snapshots", name})
	}
	body, err := c.Marshal(del)
	if err != nil {
		t.Fatalf("full delete request: %v", err)
	}
	req := &Request{Auth: Auth{OwnerPub: make([]byte, 32), Cert: make([]byte, MaxCertSize), Sig: make([]byte, 128)}, Body: body}
	if _, err := c.Marshal(req); err != nil {
		t.Fatalf("full delete request with its proof: %v", err)
	}
}
