package repo_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/mem"
)

// fuzzMaster is a fixed key, so that seeds made from real packs stay valid.
var fuzzMaster = crypto.MasterKey{1, 2, 3, 4, 5, 6, 7, 8}

// samplePack stores a few blobs with the fixed key and returns the pack's
// bytes and the index file describing it.
func samplePack(f *testing.F) ([]byte, *repo.IndexFile) {
	f.Helper()
	ctx := context.Background()
	st := mem.New()
	r, err := repo.InitWithMaster(ctx, st, fuzzMaster, []byte("pw"), repo.Options{KDF: &cheap})
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	for i, data := range [][]byte{[]byte("hello"), bytes.Repeat([]byte("compressible "), 400), {}} {
		id := r.Keys().BlobID(data)
		t := repo.DataBlob
		if i == 2 {
			t = repo.TreeBlob
		}
		if _, err := r.SaveBlob(ctx, t, id, data); err != nil {
			f.Fatal(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		f.Fatal(err)
	}
	var packs []string
	st.List(ctx, store.Pack, func(i store.Info) error { packs = append(packs, i.Handle.Name); return nil })
	b, err := store.ReadAll(ctx, st, store.Handle{Type: store.Pack, Name: packs[0]})
	if err != nil {
		f.Fatal(err)
	}
	var idx repo.IndexFile
	for p, size := range r.Index().Packs() {
		ip := repo.IndexPack{ID: p, Size: size}
		r.Index().Each(func(pb repo.PackedBlob) {
			if pb.Pack == p {
				ip.Blobs = append(ip.Blobs, pb.BlobEntry)
			}
		})
		idx.Packs = append(idx.Packs, ip)
	}
	return b, &idx
}

func FuzzDecodeIndexPlain(f *testing.F) {
	_, idx := samplePack(f)
	f.Add(repo.EncodeIndexPlain(idx))
	f.Add(repo.EncodeIndexPlain(&repo.IndexFile{}))
	f.Add([]byte("CIDX\x01\xff\xff\xff\xff\x0f"))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := repo.DecodeIndexPlain(b)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged.
		again, err := repo.DecodeIndexPlain(repo.EncodeIndexPlain(x))
		if err != nil {
			t.Fatalf("re-encoded index does not decode: %v", err)
		}
		if !bytes.Equal(repo.EncodeIndexPlain(again), repo.EncodeIndexPlain(x)) {
			t.Fatal("index changes in a round trip")
		}
		for _, p := range x.Packs {
			for _, e := range p.Blobs {
				if int64(e.Offset)+int64(e.Length) > p.Size || e.Length < crypto.Overhead {
					t.Fatalf("decoded blob %s outside its pack", e.ID.Short())
				}
			}
		}
	})
}

func checkEntries(t *testing.T, entries []repo.BlobEntry, packLen int) {
	t.Helper()
	var off int64
	for _, e := range entries {
		if int64(e.Offset) != off || e.Length < crypto.Overhead {
			t.Fatalf("entry %s at %d+%d, expected offset %d", e.ID.Short(), e.Offset, e.Length, off)
		}
		off += int64(e.Length)
	}
	if off > int64(packLen) {
		t.Fatalf("entries cover %d bytes of a %d-byte pack", off, packLen)
	}
}

// FuzzDecodePack feeds whole packs to DecodePack under a fixed key.
func FuzzDecodePack(f *testing.F) {
	pack, _ := samplePack(f)
	keys := crypto.Derive(fuzzMaster)
	f.Add(pack)
	f.Add(pack[len(pack)-12:])
	f.Add([]byte("CAIRNPK1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := repo.DecodePack(keys, b)
		if err != nil {
			return
		}
		checkEntries(t, entries, len(b))
	})
}

// FuzzPackHeader reaches the header parser behind the AEAD: the fuzzer
// chooses the blob area and the header plaintext, which are sealed with
// the fixed key into a pack that DecodePack must parse or refuse.
func FuzzPackHeader(f *testing.F) {
	pack, _ := samplePack(f)
	keys := crypto.Derive(fuzzMaster)
	hl := int(binary.LittleEndian.Uint32(pack[len(pack)-12:]))
	hoff := len(pack) - 12 - hl
	plain, err := keys.Open(nil, pack[hoff:len(pack)-12], []byte("cairn pack header v1"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pack[:hoff], plain)
	f.Add([]byte{}, []byte{0, 0, 0, 0})
	f.Add(make([]byte, 40), append([]byte{1, 0, 0, 0, 1, 0, 40, 0, 0, 0, 1, 0, 0, 0}, make([]byte, 32)...))
	f.Fuzz(func(t *testing.T, blobs, plain []byte) {
		ct := keys.Seal(nil, plain, []byte("cairn pack header v1"))
		b := append(append([]byte{}, blobs...), ct...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(ct)))
		b = append(b, "CAIRNPK1"...)
		entries, err := repo.DecodePack(keys, b)
		if err != nil {
			return
		}
		checkEntries(t, entries, len(blobs))
	})
}

func FuzzDecodeTree(f *testing.F) {
	sub := crypto.Hash([]byte("sub"))
	tree := &repo.Tree{Nodes: []*repo.Node{
		{Name: "a", Type: repo.NodeFile, Mode: 0o644, ModTime: time.Unix(1700000000, 5), Size: 3, Content: []crypto.ID{crypto.Hash([]byte("x"))}},
		{Name: "b\xff", Type: repo.NodeSymlink, LinkTarget: "../\xfe"},
		{Name: "dir", Type: repo.NodeDir, Subtree: &sub, Xattrs: []repo.Xattr{{Name: "user.x", Value: []byte{0, 1}}}},
	}}
	b, err := repo.EncodeTree(tree)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"nodes":[]}`))
	f.Add([]byte(`{"nodes":[{"name":"x","type":"dir"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := repo.DecodeTree(b)
		if err != nil {
			return
		}
		enc, err := repo.EncodeTree(tr)
		if err != nil {
			t.Fatalf("decoded tree does not encode: %v", err)
		}
		again, err := repo.DecodeTree(enc)
		if err != nil {
			t.Fatalf("re-encoded tree does not decode: %v\n%s", err, enc)
		}
		enc2, err := repo.EncodeTree(again)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("tree changes in a round trip:\n%s\n%s", enc, enc2)
		}
	})
}
