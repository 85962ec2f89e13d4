package wire

import (
	"bytes"
	"testing"
)

// Every decoder of bytes from the network has a fuzz target. The seeds are
// valid messages; the fuzzer mutates them. A decoder must never panic, and
// what it accepts must encode again within the frame limit.

func fuzzMessage[T any, PT interface {
	*T
	Message
}](f *testing.F, seeds ...PT) {
	c := NewCodec()
	for _, s := range seeds {
		b, err := c.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0xa0})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m T
		if err := c.Unmarshal(b, PT(&m)); err != nil {
			return
		}
		if _, err := c.Marshal(PT(&m)); err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
	})
}

var seedHash = make([]byte, 32)

func FuzzDecodeFrame(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteFrame(&buf, []byte{0xa0})
	f.Add(buf.Bytes())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ReadFrame(bytes.NewReader(b))
		if err == nil && (len(p) == 0 || len(p) > MaxFrameSize) {
			t.Fatalf("accepted a frame of %d bytes", len(p))
		}
	})
}

func FuzzDecodeChallenge(f *testing.F) {
	fuzzMessage(f, &Challenge{Nonce: make([]byte, NonceSize)})
}

func FuzzDecodeRequest(f *testing.F) {
	fuzzMessage(f, &Request{Auth: Auth{OwnerPub: make([]byte, 32), Cert: []byte("{}"), Sig: make([]byte, 64)}, Body: []byte{0xa0}})
}

func FuzzDecodeOfferReq(f *testing.F) { fuzzMessage(f, &OfferReq{Bytes: 1 << 20, Until: 1e9}) }

func FuzzDecodeOfferResp(f *testing.F) {
	fuzzMessage(f, &OfferResp{Code: CodeQuota, Message: "no", Free: 5, MaxUntil: 1e9})
}

func FuzzDecodePutReq(f *testing.F) {
	fuzzMessage(f, &PutReq{Object: Object{"data", "aa"}, Size: 10, Hash: seedHash, Until: 1e9})
}

func FuzzDecodePutResp(f *testing.F) { fuzzMessage(f, &PutResp{Code: CodeOK, Have: true, Until: 1e9}) }

func FuzzDecodeGetReq(f *testing.F) {
	fuzzMessage(f, &GetReq{Object: Object{"index", "bb"}, Offset: 3, Length: 4})
}

func FuzzDecodeGetResp(f *testing.F) {
	fuzzMessage(f, &GetResp{Code: CodeOK, Length: 4, Size: 10, Hash: seedHash})
}

func FuzzDecodeHasReq(f *testing.F) {
	fuzzMessage(f, &HasReq{Objects: []Object{{"data", "a"}, {"keys", "b"}}}, &HasReq{ListType: "data", After: Object{"data", "a"}, Limit: 10})
}

func FuzzDecodeHasResp(f *testing.F) {
	fuzzMessage(f, &HasResp{Entries: []Entry{{Object: Object{"data", "a"}, Size: 3, Hash: seedHash, Until: 9}}, More: true})
}

func FuzzDecodeRenewReq(f *testing.F) {
	fuzzMessage(f, &RenewReq{Objects: []Object{{"data", "a"}}, Until: 99})
}

func FuzzDecodeDeleteReq(f *testing.F) { fuzzMessage(f, &DeleteReq{Objects: []Object{{"data", "a"}}}) }

func FuzzDecodeChangeResp(f *testing.F) {
	fuzzMessage(f, &ChangeResp{Code: CodeNotFound, Missing: []Object{{"data", "a"}}})
}

func FuzzDecodeAuditReq(f *testing.F) {
	fuzzMessage(f, &AuditReq{Object: Object{"data", "a"}, Leaves: []uint64{0, 7}})
}

func FuzzDecodeAuditResp(f *testing.F) {
	fuzzMessage(f, &AuditResp{Size: 5000, Leaves: []AuditLeaf{{Index: 1, Data: []byte("x"), Path: [][]byte{seedHash}}}})
}

// FuzzVerifyLeaf feeds arbitrary audit answers to the verifier: it must
// never panic and must only accept the true leaf.
func FuzzVerifyLeaf(f *testing.F) {
	// Two full leaves and a short one; the seed is the short leaf, so the
	// fuzzer works on small inputs.
	data := bytes.Repeat([]byte("cairn"), (2*LeafSize+10)/5)
	root := MerkleRoot(data)
	m := NewMerkleHasher()
	m.Write(data)
	paths, _ := m.Paths([]uint64{2})
	f.Add(uint64(2), data[2*LeafSize:], bytes.Join(paths[0], nil))
	f.Fuzz(func(t *testing.T, idx uint64, leaf []byte, flat []byte) {
		var path [][]byte
		for len(flat) >= 32 {
			path = append(path, flat[:32])
			flat = flat[32:]
		}
		if VerifyLeaf(root, int64(len(data)), idx, leaf, path) == nil {
			start := int(idx) * LeafSize
			if !bytes.Equal(leaf, data[start:min(start+LeafSize, len(data))]) {
				t.Fatalf("accepted a false leaf %d", idx)
			}
		}
	})
}
