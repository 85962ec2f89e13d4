package hosting_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/hosting"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
)

func TestPutGetHas(t *testing.T) {
	for _, transport := range []string{"tcp", "quic"} {
		t.Run(transport, func(t *testing.T) {
			th := startHost(t, transport)
			o := newOwner(t, transport, th)
			ctx := context.Background()

			data := randBytes(3*wire.LeafSize + 100)
			h := pack(data)
			if res := o.put(t, th, h, data); !res.Sent {
				t.Fatal("first put not sent")
			}
			cfg := []byte("config bytes")
			cfgH := store.Handle{Type: store.Config, Name: store.ConfigName}
			o.put(t, th, cfgH, cfg)
			shard := randBytes(1000)
			shardH := store.Handle{Type: store.Pack, Name: h.Name + "-s01"}
			o.put(t, th, shardH, shard)
			empty := store.Handle{Type: store.Index, Name: crypto.Hash(nil).String()}
			o.put(t, th, empty, nil)

			// Idempotent: the same bytes again are not sent.
			if res := o.put(t, th, h, data); res.Sent {
				t.Fatal("second put of the same bytes was sent")
			}

			for _, tc := range []struct {
				h    store.Handle
				want []byte
			}{{h, data}, {cfgH, cfg}, {shardH, shard}, {empty, nil}} {
				got, err := o.get(th, tc.h, 0, 0)
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("get %s: %v (%d bytes)", tc.h, err, len(got))
				}
			}
			got, err := o.get(th, h, 10, 20)
			if err != nil || !bytes.Equal(got, data[10:30]) {
				t.Fatalf("partial get: %v", err)
			}
			rc, err := o.client.GetChecked(ctx, th.h.ID(), shardH, sha256.Sum256(shard))
			if err != nil {
				t.Fatal(err)
			}
			rc.Close()

			missing := pack([]byte("nope"))
			if _, err := o.get(th, missing, 0, 0); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("get missing: %v", err)
			}
			if _, err := o.get(th, h, int64(len(data)), 5); !errors.Is(err, wire.ErrBadRequest) {
				t.Fatalf("get beyond the end: %v", err)
			}

			held, err := o.client.Has(ctx, th.h.ID(), []store.Handle{h, cfgH, missing})
			if err != nil {
				t.Fatal(err)
			}
			if len(held) != 2 || held[h].Size != int64(len(data)) || held[h].Hash != crypto.Hash(data) {
				t.Fatalf("has: %+v", held)
			}
			if !held[h].Until.Equal(th.until().Truncate(time.Second)) {
				t.Fatalf("has: until %v, want %v", held[h].Until, th.until())
			}
			var listed []store.Handle
			err = o.client.List(ctx, th.h.ID(), store.Pack, func(hd hostclient.Held) error {
				listed = append(listed, hd.Handle)
				return nil
			})
			if err != nil || len(listed) != 2 {
				t.Fatalf("list packs: %v %v", listed, err)
			}

			u, err := th.srv.Usage(ctx)
			if err != nil || u.Objects != 4 || u.Bytes != int64(len(data)+len(cfg)+len(shard)) || u.Owners != 1 {
				t.Fatalf("usage %+v %v", u, err)
			}
			led, err := th.srv.Ledger(ctx)
			if err != nil || led[o.h.ID()].HeldFor != u.Bytes {
				t.Fatalf("ledger %+v %v", led, err)
			}
		})
	}
}

func TestListPages(t *testing.T) {
	th := startHost(t, "tcp", func(c *hosting.Config) { c.Limits.RequestRate, c.Limits.RequestBurst = 1e6, 1e6 })
	o := newOwner(t, "tcp", th)
	want := map[store.Handle]bool{}
	for i := range 1100 {
		b := []byte{byte(i), byte(i >> 8)}
		h := store.Handle{Type: store.Snapshot, Name: crypto.Hash(b).String()}
		want[h] = true
		o.put(t, th, h, b)
	}
	n := 0
	err := o.client.List(context.Background(), th.h.ID(), "", func(hd hostclient.Held) error {
		if !want[hd.Handle] {
			t.Errorf("unexpected %s", hd.Handle)
		}
		n++
		return nil
	})
	if err != nil || n != len(want) {
		t.Fatalf("listed %d of %d: %v", n, len(want), err)
	}
	// Renew, has and delete split long lists into batches.
	var all []store.Handle
	for h := range want {
		all = append(all, h)
	}
	ctx := context.Background()
	if missing, err := o.client.Renew(ctx, th.h.ID(), all, th.until().Add(time.Hour)); err != nil || len(missing) != 0 {
		t.Fatalf("renew all: %d missing, %v", len(missing), err)
	}
	if held, err := o.client.Has(ctx, th.h.ID(), all); err != nil || len(held) != len(all) {
		t.Fatalf("has all: %d, %v", len(held), err)
	}
	if missing, err := o.client.Delete(ctx, th.h.ID(), all); err != nil || len(missing) != 0 {
		t.Fatalf("delete all: %d missing, %v", len(missing), err)
	}
	if f := files(t, th.dir, "objects"); len(f) != 0 {
		t.Fatalf("%d files left after deleting all", len(f))
	}
}

func TestPutWrongHashLeavesNothing(t *testing.T) {
	th := startHost(t, "tcp")
	o := newOwner(t, "tcp", th)
	ctx := context.Background()
	data := randBytes(100 << 10)

	// A content-addressed name with other bytes: refused by the client
	// before anything is sent, and by the host if a client lies.
	h := pack([]byte("other bytes"))
	if _, err := o.tryPut(th, h, data); !errors.Is(err, wire.ErrHashMismatch) {
		t.Fatalf("put under a wrong name: %v", err)
	}
	obj := hostclient.Object{Handle: h, Size: int64(len(data)), Until: th.until()}
	if _, err := o.client.Put(ctx, th.h.ID(), obj, bytes.NewReader(data)); !errors.Is(err, wire.ErrHashMismatch) {
		t.Fatalf("put under a wrong name: %v", err)
	}
	// An explicit hash that the bytes do not match: refused after the body.
	obj = hostclient.Object{Handle: store.Handle{Type: store.Config, Name: store.ConfigName}, Size: int64(len(data)),
		Hash: crypto.Hash([]byte("something else")), Until: th.until()}
	if _, err := o.client.Put(ctx, th.h.ID(), obj, bytes.NewReader(data)); !errors.Is(err, wire.ErrHashMismatch) {
		t.Fatalf("put with a wrong hash: %v", err)
	}
	if f := files(t, th.dir, "objects"); len(f) != 0 {
		t.Fatalf("objects left on disk: %v", f)
	}
	if f := files(t, th.dir, "tmp"); len(f) != 0 {
		t.Fatalf("temporary files left: %v", f)
	}
	if u, _ := th.srv.Usage(ctx); u.Objects != 0 {
		t.Fatalf("usage after refused puts: %+v", u)
	}
	// A mutable object replaced by other bytes is replaced, not added.
	cfg := store.Handle{Type: store.Config, Name: store.ConfigName}
	o.put(t, th, cfg, []byte("v1"))
	o.put(t, th, cfg, []byte("version 2"))
	if got, err := o.get(th, cfg, 0, 0); err != nil || string(got) != "version 2" {
		t.Fatalf("replaced config: %q %v", got, err)
	}
}

func TestOfferAndDenials(t *testing.T) {
	th := startHost(t, "tcp", func(c *hosting.Config) {
		c.Settings = hosting.Settings{OfferBytes: 1 << 20, FreeAllowance: 1 << 30, Ratio: 1, MaxLease: 30 * 24 * time.Hour}
	})
	friend := newOwner(t, "tcp", th)
	stranger := newOwner(t, "tcp", th)
	blocked := newOwner(t, "tcp", th)
	th.policy.set(stranger.h.ID(), hosting.TrustUnknown)
	th.policy.set(blocked.h.ID(), hosting.TrustBlocked)
	ctx := context.Background()
	until := th.clock.Now().Add(24 * time.Hour)

	res, err := friend.client.Offer(ctx, th.h.ID(), 512<<10, until)
	if err != nil || res.Free != 1<<20 {
		t.Fatalf("offer within the offer: %+v %v", res, err)
	}
	if !res.MaxUntil.Equal(th.clock.Now().Add(30 * 24 * time.Hour)) {
		t.Fatalf("max until %v", res.MaxUntil)
	}
	tests := []struct {
		name  string
		o     *owner
		bytes int64
		until time.Time
		want  error
	}{
		{"beyond the offer", friend, 2 << 20, until, wire.ErrDiskFull},
		{"lease too long", friend, 1, th.clock.Now().Add(31 * 24 * time.Hour), wire.ErrLeaseTooLong},
		{"stranger in friends-only mode", stranger, 1, until, wire.ErrNotTrusted},
		{"blocked", blocked, 1, until, wire.ErrNotTrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.o.client.Offer(ctx, th.h.ID(), tt.bytes, tt.until); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}

	// Puts are held to the same rules.
	big := randBytes(600 << 10)
	friend.put(t, th, pack(big), big)
	more := randBytes(600 << 10)
	if _, err := friend.tryPut(th, pack(more), more); !errors.Is(err, wire.ErrDiskFull) {
		t.Fatalf("put beyond the offer: %v", err)
	}
	small := randBytes(10)
	if _, err := stranger.tryPut(th, pack(small), small); !errors.Is(err, wire.ErrNotTrusted) {
		t.Fatalf("stranger put: %v", err)
	}
	if _, err := blocked.tryPut(th, pack(small), small); !errors.Is(err, wire.ErrNotTrusted) {
		t.Fatalf("blocked put: %v", err)
	}
	// A friend's quota override.
	th.policy.setQuota(friend.h.ID(), 700<<10)
	mid := randBytes(200 << 10)
	if _, err := friend.tryPut(th, pack(mid), mid); !errors.Is(err, wire.ErrQuota) {
		t.Fatalf("put beyond the friend's quota: %v", err)
	}
	// A disk that is full whatever the offer says.
	th.srv.SetSettings(generous())
	full := startHost(t, "tcp", func(c *hosting.Config) { c.DiskFree = func() (int64, error) { return 1000, nil } })
	connect(t, friend.h, full.h)
	if _, err := friend.tryPut(full, pack(mid), mid); !errors.Is(err, wire.ErrDiskFull) {
		t.Fatalf("put on a full disk: %v", err)
	}
}

func TestReciprocity(t *testing.T) {
	th := startHost(t, "tcp", func(c *hosting.Config) {
		c.Settings = hosting.Settings{OfferBytes: 10 << 20, Community: true, FreeAllowance: 64 << 10, Ratio: 2, MaxLease: 30 * 24 * time.Hour}
	})
	th.policy.setDefault(hosting.TrustCommunity)
	o := newOwner(t, "tcp", th)
	p := o.h.ID()
	ctx := context.Background()

	a := randBytes(60 << 10)
	o.put(t, th, pack(a), a)
	b := randBytes(10 << 10)
	if _, err := o.tryPut(th, pack(b), b); !errors.Is(err, wire.ErrQuota) {
		t.Fatalf("put beyond the free allowance: %v", err)
	}
	// The peer keeps 100 KiB for us: it may now keep 2 × 100 KiB with us.
	if err := th.srv.RecordHeldBy(ctx, p, 100<<10); err != nil {
		t.Fatal(err)
	}
	o.put(t, th, pack(b), b)
	c := randBytes(140 << 10)
	if _, err := o.tryPut(th, pack(c), c); !errors.Is(err, wire.ErrQuota) {
		t.Fatalf("put beyond ratio × held: %v", err)
	}
	res, err := o.client.Offer(ctx, th.h.ID(), 1, th.until())
	if err != nil || res.Free != 200<<10-70<<10 {
		t.Fatalf("offer: %+v %v", res, err)
	}
	led, err := th.srv.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e := led[p]; e.HeldFor != 70<<10 || e.HeldBy != 100<<10 || e.Objects != 2 {
		t.Fatalf("ledger entry %+v", e)
	}
	// Community mode off: strangers are refused, whatever they give.
	st := th.srv.Settings()
	st.Community = false
	th.srv.SetSettings(st)
	d := randBytes(10)
	if _, err := o.tryPut(th, pack(d), d); !errors.Is(err, wire.ErrNotTrusted) {
		t.Fatalf("community put with community mode off: %v", err)
	}
}

func TestLeaseExpiryAndGC(t *testing.T) {
	th := startHost(t, "tcp")
	o := newOwner(t, "tcp", th)
	ctx := context.Background()
	data := randBytes(5000)
	h := pack(data)
	obj := hostclient.Object{Handle: h, Size: int64(len(data)), Until: th.clock.Now().Add(time.Hour)}
	if _, err := o.client.Put(ctx, th.h.ID(), obj, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	other := randBytes(10)
	o.put(t, th, pack(other), other) // 30 days

	if missing, err := o.client.Renew(ctx, th.h.ID(), []store.Handle{h, pack([]byte("x"))}, th.clock.Now().Add(2*time.Hour)); err != nil || len(missing) != 1 {
		t.Fatalf("renew: %v %v", missing, err)
	}
	// Renewing never shortens.
	if _, err := o.client.Renew(ctx, th.h.ID(), []store.Handle{h}, th.clock.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := o.client.Renew(ctx, th.h.ID(), []store.Handle{h}, th.clock.Now().Add(400*24*time.Hour)); !errors.Is(err, wire.ErrLeaseTooLong) {
		t.Fatalf("renew too long: %v", err)
	}
	th.clock.Add(90 * time.Minute)
	if st, err := th.srv.GC(ctx); err != nil || st.Objects != 0 {
		t.Fatalf("gc before expiry: %+v %v", st, err)
	}
	if _, err := o.get(th, h, 0, 0); err != nil {
		t.Fatalf("get before expiry: %v", err)
	}
	th.clock.Add(time.Hour)
	if _, err := o.get(th, h, 0, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after expiry: %v", err)
	}
	st, err := th.srv.GC(ctx)
	if err != nil || st.Objects != 1 || st.Bytes != int64(len(data)) {
		t.Fatalf("gc: %+v %v", st, err)
	}
	if f := files(t, th.dir, "objects"); len(f) != 1 {
		t.Fatalf("files after gc: %v", f)
	}
	led, _ := th.srv.Ledger(ctx)
	if led[o.h.ID()].HeldFor != int64(len(other)) {
		t.Fatalf("ledger after gc: %+v", led)
	}
	// The background loop runs GC too.
	th.clock.Add(60 * 24 * time.Hour)
	loopCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { th.srv.RunGC(loopCtx, 10*time.Millisecond); close(done) }()
	waitFor(t, "background gc", func() bool { return len(files(t, th.dir, "objects")) == 0 })
	cancel()
	<-done
}

func TestRestartKeepsDataAndLedger(t *testing.T) {
	th := startHost(t, "tcp")
	o := newOwner(t, "tcp", th)
	ctx := context.Background()
	data := randBytes(50 << 10)
	h := pack(data)
	o.put(t, th, h, data)
	if err := th.srv.RecordHeldBy(ctx, o.h.ID(), 12345); err != nil {
		t.Fatal(err)
	}
	before, _ := th.srv.Ledger(ctx)
	if err := th.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Leftovers of a crash: a partial upload and a file never committed.
	os.WriteFile(filepath.Join(th.dir, "tmp", "put-123"), []byte("partial"), 0o600)
	orphan := filepath.Join(th.dir, "objects", o.keys.OwnerID(), "data", crypto.Hash([]byte("o")).String())
	os.WriteFile(orphan, []byte("o"), 0o600)

	th.start(t, hosting.Config{Dir: th.dir, Settings: generous(), Policy: th.policy, Now: th.clock.Now, Logger: testLogger(t)})
	got, err := o.get(th, h, 0, 0)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after restart: %v", err)
	}
	after, err := th.srv.Ledger(ctx)
	if err != nil || after[o.h.ID()] != before[o.h.ID()] {
		t.Fatalf("ledger after restart: %+v, before %+v (%v)", after, before, err)
	}
	if f := files(t, th.dir, "tmp"); len(f) != 0 {
		t.Fatalf("partial upload survived: %v", f)
	}
	if _, err := os.Stat(orphan); !os.IsNotExist(err) {
		t.Fatalf("uncommitted file survived: %v", err)
	}
}

func TestAudit(t *testing.T) {
	th := startHost(t, "tcp")
	o := newOwner(t, "tcp", th)
	ctx := context.Background()
	data := randBytes(40*wire.LeafSize + 7)
	h := pack(data)
	root := wire.MerkleRoot(data)
	o.put(t, th, h, data)
	for range 3 {
		ok, err := o.client.Audit(ctx, th.h.ID(), h, int64(len(data)), root, 8)
		if err != nil || !ok {
			t.Fatalf("audit of a healthy host: %v %v", ok, err)
		}
	}
	// A root the owner did not record fails.
	if ok, err := o.client.Audit(ctx, th.h.ID(), h, int64(len(data)), wire.MerkleRoot(data[1:]), 4); err != nil || ok {
		t.Fatalf("audit against another root: %v %v", ok, err)
	}
	// The host flips a byte in every leaf: any challenge catches it.
	path := filepath.Join(th.dir, "objects", o.keys.OwnerID(), "data", h.Name)
	bad := bytes.Clone(data)
	for i := 0; i < len(bad); i += wire.LeafSize {
		bad[i] ^= 0xff
	}
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if ok, err := o.client.Audit(ctx, th.h.ID(), h, int64(len(data)), root, 1); err != nil || ok {
		t.Fatalf("audit of altered bytes: %v %v", ok, err)
	}
	// A full read of altered bytes fails its hash check.
	if _, err := o.get(th, h, 0, 0); !errors.Is(err, wire.ErrHashMismatch) {
		t.Fatalf("get of altered bytes: %v", err)
	}
	// A lost object.
	if _, err := o.client.Delete(ctx, th.h.ID(), []store.Handle{h}); err != nil {
		t.Fatal(err)
	}
	if ok, err := o.client.Audit(ctx, th.h.ID(), h, int64(len(data)), root, 1); ok || !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("audit of a deleted object: %v %v", ok, err)
	}
}

func TestOwnershipProof(t *testing.T) {
	th := startHost(t, "tcp")
	alice := newOwner(t, "tcp", th)
	mallory := newOwner(t, "tcp", th)
	ctx := context.Background()
	data := randBytes(1000)
	h := pack(data)
	alice.put(t, th, h, data)
	hp := th.h.ID()

	t.Run("another owner's key", func(t *testing.T) {
		if _, err := mallory.get(th, h, 0, 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get: %v", err)
		}
		if held, err := mallory.client.Has(ctx, hp, []store.Handle{h}); err != nil || len(held) != 0 {
			t.Fatalf("has: %v %v", held, err)
		}
		if missing, err := mallory.client.Delete(ctx, hp, []store.Handle{h}); err != nil || len(missing) != 1 {
			t.Fatalf("delete: %v %v", missing, err)
		}
		if missing, err := mallory.client.Renew(ctx, hp, []store.Handle{h}, th.until()); err != nil || len(missing) != 1 {
			t.Fatalf("renew: %v %v", missing, err)
		}
		if ok, err := mallory.client.Audit(ctx, hp, h, int64(len(data)), wire.MerkleRoot(data), 1); ok || !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("audit: %v %v", ok, err)
		}
	})

	certified := func(t *testing.T, cert *crypto.NodeCert) *hostclient.Client {
		t.Helper()
		n := newHost(t, "tcp")
		connect(t, n, th.h)
		if cert == nil {
			cert = alice.keys.IssueNodeCert(n.ID().String(), th.clock.Now(), 24*time.Hour)
		}
		s, err := hostclient.NodeSigner(n.Peerstore().PrivKey(n.ID()), cert)
		if err != nil {
			t.Fatal(err)
		}
		return hostclient.New(n, s, hostclient.Options{})
	}
	t.Run("certified node", func(t *testing.T) {
		c := certified(t, nil)
		rc, err := c.Get(ctx, hp, h, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		// It stores for alice too, charged to itself.
		more := randBytes(300)
		obj := hostclient.Object{Handle: pack(more), Size: 300, Until: th.until()}
		if _, err := c.Put(ctx, hp, obj, bytes.NewReader(more)); err != nil {
			t.Fatal(err)
		}
		if got, err := alice.get(th, pack(more), 0, 0); err != nil || !bytes.Equal(got, more) {
			t.Fatalf("alice reads what her node stored: %v", err)
		}
		led, _ := th.srv.Ledger(ctx)
		if led[alice.h.ID()].HeldFor != int64(len(data)) || len(led) != 2 {
			t.Fatalf("ledger: %+v", led)
		}
		if _, err := c.Delete(ctx, hp, []store.Handle{pack(more)}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("forged cert", func(t *testing.T) {
		n := newHost(t, "tcp")
		forged := mallory.keys.IssueNodeCert(n.ID().String(), th.clock.Now(), time.Hour)
		forged.OwnerPub = alice.keys.OwnerPublic() // claims alice, signed by mallory
		connect(t, n, th.h)
		s, _ := hostclient.NodeSigner(n.Peerstore().PrivKey(n.ID()), forged)
		c := hostclient.New(n, s, hostclient.Options{})
		if _, err := c.Get(ctx, hp, h, 0, 0); !errors.Is(err, wire.ErrBadProof) {
			t.Fatalf("get: %v", err)
		}
		if _, err := c.Delete(ctx, hp, []store.Handle{h}); !errors.Is(err, wire.ErrBadProof) {
			t.Fatalf("delete: %v", err)
		}
		if _, err := c.Renew(ctx, hp, []store.Handle{h}, th.until()); !errors.Is(err, wire.ErrBadProof) {
			t.Fatalf("renew: %v", err)
		}
	})
	t.Run("cert of another node", func(t *testing.T) {
		other := newHost(t, "tcp")
		c := certified(t, alice.keys.IssueNodeCert(other.ID().String(), th.clock.Now(), time.Hour))
		if _, err := c.Get(ctx, hp, h, 0, 0); !errors.Is(err, wire.ErrBadProof) {
			t.Fatalf("get: %v", err)
		}
	})
	t.Run("expired cert", func(t *testing.T) {
		n := newHost(t, "tcp")
		connect(t, n, th.h)
		cert := alice.keys.IssueNodeCert(n.ID().String(), th.clock.Now().Add(-48*time.Hour), time.Hour)
		s, _ := hostclient.NodeSigner(n.Peerstore().PrivKey(n.ID()), cert)
		c := hostclient.New(n, s, hostclient.Options{})
		if _, err := c.Get(ctx, hp, h, 0, 0); !errors.Is(err, wire.ErrBadProof) {
			t.Fatalf("get: %v", err)
		}
	})
	t.Run("replayed proof", func(t *testing.T) {
		// A valid signed request, recorded and sent again on a new stream:
		// the host's fresh nonce makes it worthless.
		codec := wire.NewCodec()
		body, _ := codec.Marshal(&wire.HasReq{Objects: []wire.Object{wire.ObjectOf(h)}})
		var recorded *wire.Request
		for i, want := range []wire.Code{wire.CodeOK, wire.CodeBadProof} {
			st, err := alice.h.NewStream(ctx, hp, wire.ProtoHas)
			if err != nil {
				t.Fatal(err)
			}
			var ch wire.Challenge
			if err := codec.ReadMsg(st, &ch); err != nil {
				t.Fatal(err)
			}
			if recorded == nil {
				msg := wire.ProofMessage(ch.Nonce, hp, alice.h.ID(), wire.ProtoHas, body)
				recorded = &wire.Request{Auth: wire.Auth{OwnerPub: alice.keys.OwnerPublic(), Sig: alice.keys.Sign(wire.ProofDomain, msg)}, Body: body}
			}
			if err := codec.WriteMsg(st, recorded); err != nil {
				t.Fatal(err)
			}
			var resp wire.HasResp
			if err := codec.ReadMsg(st, &resp); err != nil {
				t.Fatal(err)
			}
			st.Close()
			if resp.Code != want {
				t.Fatalf("attempt %d: code %v, want %v", i, resp.Code, want)
			}
		}
	})
	t.Run("proof for another host", func(t *testing.T) {
		// A proof made for host A, presented to host B with A's nonce.
		other := startHost(t, "tcp")
		connect(t, alice.h, other.h)
		codec := wire.NewCodec()
		body, _ := codec.Marshal(&wire.DeleteReq{Objects: []wire.Object{wire.ObjectOf(h)}})
		st, err := alice.h.NewStream(ctx, hp, wire.ProtoDelete)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		var ch wire.Challenge
		if err := codec.ReadMsg(st, &ch); err != nil {
			t.Fatal(err)
		}
		msg := wire.ProofMessage(ch.Nonce, other.h.ID(), alice.h.ID(), wire.ProtoDelete, body)
		req := &wire.Request{Auth: wire.Auth{OwnerPub: alice.keys.OwnerPublic(), Sig: alice.keys.Sign(wire.ProofDomain, msg)}, Body: body}
		if err := codec.WriteMsg(st, req); err != nil {
			t.Fatal(err)
		}
		var resp wire.ChangeResp
		if err := codec.ReadMsg(st, &resp); err != nil || resp.Code != wire.CodeBadProof {
			t.Fatalf("code %v %v", resp.Code, err)
		}
	})
	if got, err := alice.get(th, h, 0, 0); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("alice's object after the attempts: %v", err)
	}
}

func TestCloseDuringUpload(t *testing.T) {
	th := startHost(t, "tcp")
	o := newOwner(t, "tcp", th)
	data := randBytes(4 << 20)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		obj := hostclient.Object{Handle: pack(data), Size: int64(len(data)), Until: th.until()}
		_, err := o.client.Put(context.Background(), th.h.ID(), obj, pr)
		done <- err
	}()
	pw.Write(data[:1<<20])
	waitFor(t, "the upload to start", func() bool { return len(files(t, th.dir, "tmp")) == 1 })
	if err := th.srv.Close(); err != nil {
		t.Fatal(err)
	}
	if f := files(t, th.dir, "tmp"); len(f) != 0 {
		t.Fatalf("partial upload left after close: %v", f)
	}
	pw.CloseWithError(errors.New("test over"))
	if err := <-done; err == nil {
		t.Fatal("put succeeded on a closed server")
	}
	if f := files(t, th.dir, "objects"); len(f) != 0 {
		t.Fatalf("objects after close: %v", f)
	}
}
