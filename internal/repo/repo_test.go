package repo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"

	"testing"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/mem"
)

var cheap = crypto.KDFParams{Time: 1, Memory: 64, Threads: 1}

func newRepo(t *testing.T) (*repo.Repository, *mem.Store) {
	t.Helper()
	st := mem.New()
	r, err := repo.Init(context.Background(), st, []byte("pw"), repo.Options{KDF: &cheap})
	if err != nil {
		t.Fatal(err)
	}
	return r, st
}

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	if _, err := repo.Init(ctx, st, []byte("pw"), repo.Options{KDF: &cheap}); !errors.Is(err, repo.ErrExists) {
		t.Fatalf("second init: %v", err)
	}
	r2, err := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Config().ID != r.Config().ID || r2.Keys().OwnerID() != r.Keys().OwnerID() {
		t.Fatal("reopened repository differs")
	}
	if _, err := repo.Open(ctx, st, []byte("nope"), repo.Options{}); !errors.Is(err, crypto.ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := repo.Open(ctx, mem.New(), []byte("pw"), repo.Options{}); !errors.Is(err, repo.ErrNoRepository) {
		t.Fatalf("empty store: %v", err)
	}
	mk, err := crypto.ParseRecoveryCode(r.Keys().RecoveryCode())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.OpenWithMaster(ctx, st, mk, repo.Options{}); err != nil {
		t.Fatalf("open with recovery code: %v", err)
	}
	// A newer format version is refused with a clear error.
	h := store.Handle{Type: store.Config, Name: store.ConfigName}
	b, _ := store.ReadAll(ctx, st, h)
	b[8] = 99
	st.Put(ctx, h, bytes.NewReader(b), int64(len(b)))
	if _, err := repo.Open(ctx, st, []byte("pw"), repo.Options{}); !errors.Is(err, repo.ErrVersion) {
		t.Fatalf("future version: %v", err)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	first := r.KeyName
	if _, err := r.AddKey(ctx, []byte("second"), repo.Options{KDF: &cheap}); err != nil {
		t.Fatal(err)
	}
	keys, _ := r.ListKeys(ctx)
	if len(keys) != 2 {
		t.Fatalf("%d keys", len(keys))
	}
	if _, err := repo.Open(ctx, st, []byte("second"), repo.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.RemoveKey(ctx, first[:8]); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, st, []byte("pw"), repo.Options{}); !errors.Is(err, crypto.ErrWrongPassphrase) {
		t.Fatal("removed key still opens")
	}
	keys, _ = r.ListKeys(ctx)
	if _, err := r.RemoveKey(ctx, keys[0].Name); !errors.Is(err, repo.ErrLastKey) {
		t.Fatalf("removing the last key: %v", err)
	}
	r3, _ := repo.Open(ctx, st, []byte("second"), repo.Options{})
	if _, err := r3.ChangePassphrase(ctx, []byte("third"), repo.Options{KDF: &cheap}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Open(ctx, st, []byte("second"), repo.Options{}); err == nil {
		t.Fatal("old passphrase still opens after passwd")
	}
	if _, err := repo.Open(ctx, st, []byte("third"), repo.Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestBlobsPacksIndex(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	var ids []crypto.ID
	var datas [][]byte
	for i := 0; i < 40; i++ {
		d := make([]byte, 512<<10)
		if i%2 == 0 {
			rand.Read(d) // incompressible
		} else {
			for j := range d {
				d[j] = byte(j % 7)
			}
			d[0] = byte(i)
		}
		id := r.Keys().BlobID(d)
		added, err := r.SaveBlob(ctx, repo.DataBlob, id, d)
		if err != nil || !added {
			t.Fatalf("save: %v %v", added, err)
		}
		if again, _ := r.SaveBlob(ctx, repo.DataBlob, id, d); again {
			t.Fatal("duplicate blob stored twice")
		}
		ids = append(ids, id)
		datas = append(datas, d)
	}
	if err := r.FlushFinal(ctx); err != nil {
		t.Fatal(err)
	}
	// Reopen from the store: the index must find every blob.
	r2, _ := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		got, err := r2.LoadBlob(ctx, id, nil)
		if err != nil || !bytes.Equal(got, datas[i]) {
			t.Fatalf("blob %d: %v", i, err)
		}
	}
	n := 0
	st.List(ctx, store.Index, func(store.Info) error { n++; return nil })
	if n != 1 {
		t.Fatalf("%d index files after the final flush, want 1 (merged)", n)
	}
	// Every pack's header lists what the index says.
	for pack := range r2.Index().Packs() {
		entries, _, err := r2.ReadPackHeader(ctx, pack)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := r2.ReadPack(ctx, pack)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := repo.DecodePack(r2.Keys(), raw)
		if err != nil || len(e2) != len(entries) {
			t.Fatalf("decode pack: %v", err)
		}
		// A flipped byte in a blob is caught on read.
		h := store.Handle{Type: store.Pack, Name: pack.String()}
		raw[entries[0].Offset+30] ^= 0xff
		st.Put(ctx, h, bytes.NewReader(raw), int64(len(raw)))
		if _, err := r2.LoadBlob(ctx, entries[0].ID, nil); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("damaged blob: %v", err)
		}
		if _, err := r2.ReadPack(ctx, pack); !errors.Is(err, repo.ErrCorrupt) {
			t.Fatalf("damaged pack hash: %v", err)
		}
		break
	}
}

func TestSnapshotSignature(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	tree := &repo.Tree{Nodes: []*repo.Node{{Name: "a\xffb", Type: repo.NodeSymlink, LinkTarget: "\x01\xfe"}}}
	tid, err := r.SaveTree(ctx, tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := r.LoadTree(ctx, tid)
	if err != nil || got.Nodes[0].Name != "a\xffb" || got.Nodes[0].LinkTarget != "\x01\xfe" {
		t.Fatalf("tree with non-UTF-8 names: %v", err)
	}
	s := &repo.Snapshot{Host: "h", Paths: []string{"/x"}, Tree: tid}
	id, err := r.SaveSnapshot(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	found, err := r.FindSnapshot(ctx, id.String()[:6])
	if err != nil || found.ID != id {
		t.Fatalf("find by prefix: %v", err)
	}
	// Another owner's repository cannot read or forge it.
	other, _ := newRepo(t)
	b, _ := store.ReadAll(ctx, st, store.Handle{Type: store.Snapshot, Name: id.String()})
	other.Store().Put(ctx, store.Handle{Type: store.Snapshot, Name: id.String()}, bytes.NewReader(b), int64(len(b)))
	if _, err := other.LoadSnapshot(ctx, id); !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("foreign snapshot: %v", err)
	}
}

func TestLocks(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t)
	s1, err := r.LockShared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := r.LockShared(ctx)
	if err != nil {
		t.Fatal("two shared locks refused")
	}
	if _, err := r.LockExclusive(ctx); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("exclusive beside shared: %v", err)
	}
	s1.Unlock(ctx)
	s2.Unlock(ctx)
	x, err := r.LockExclusive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.LockShared(ctx); !errors.Is(err, repo.ErrLocked) {
		t.Fatalf("shared beside exclusive: %v", err)
	}
	x.Unlock(ctx)
}

func TestDamagedIndexSkipped(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	d := []byte("some blob")
	if _, err := r.SaveBlob(ctx, repo.DataBlob, r.Keys().BlobID(d), d); err != nil {
		t.Fatal(err)
	}
	if err := r.FlushFinal(ctx); err != nil {
		t.Fatal(err)
	}
	var name string
	st.List(ctx, store.Index, func(i store.Info) error { name = i.Handle.Name; return nil })
	h := store.Handle{Type: store.Index, Name: name}
	b, _ := store.ReadAll(ctx, st, h)
	b[len(b)/2] ^= 1
	st.Put(ctx, h, bytes.NewReader(b), int64(len(b)))
	r2, _ := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	if err := r2.LoadIndex(ctx); err != nil {
		t.Fatalf("a damaged index stopped LoadIndex: %v", err)
	}
	if got := r2.DamagedIndexes(); len(got) != 1 || got[0] != name {
		t.Fatalf("damaged indexes: %v", got)
	}
}

func TestNonUTF8Metadata(t *testing.T) {
	n := repo.Node{Name: "f", Type: repo.NodeFile, User: "bad\xff", Xattrs: []repo.Xattr{{Name: "user.\xfe", Value: []byte{1}}}}
	b, err := repo.EncodeTree(&repo.Tree{Nodes: []*repo.Node{&n}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := repo.DecodeTree(b)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Nodes[0].Xattrs[0].Name != "user.\xfe" {
		t.Fatalf("xattr name mangled: %q", tr.Nodes[0].Xattrs[0].Name)
	}
	if tr.Nodes[0].User != "" {
		t.Fatalf("a user name that is not UTF-8 was stored mangled: %q", tr.Nodes[0].User)
	}
}

func TestRebuildIndex(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t)
	var ids []crypto.ID
	for i := 0; i < 5; i++ {
		d := []byte{byte(i), 1, 2, 3}
		id := r.Keys().BlobID(d)
		ids = append(ids, id)
		r.SaveBlob(ctx, repo.DataBlob, id, d)
	}
	if err := r.FlushFinal(ctx); err != nil {
		t.Fatal(err)
	}
	// Lose every index.
	st.List(ctx, store.Index, func(i store.Info) error { return st.Delete(ctx, i.Handle) })
	r2, _ := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	rep, err := r2.RebuildIndex(ctx, false)
	if err != nil || rep.PacksRead != 1 || rep.BlobsIndexed != 5 {
		t.Fatalf("rebuild: %+v %v", rep, err)
	}
	r3, _ := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	r3.LoadIndex(ctx)
	for _, id := range ids {
		if _, err := r3.LoadBlob(ctx, id, nil); err != nil {
			t.Fatalf("blob after rebuild: %v", err)
		}
	}
	rep, err = r3.RebuildIndex(ctx, true)
	if err != nil || rep.PacksRead != 1 || len(rep.Removed) != 1 {
		t.Fatalf("rebuild all: %+v %v", rep, err)
	}
}
