package placement

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

func TestReplicationRoundTrip(t *testing.T) {
	v := newEnv(t, 3, Replicas(2))
	packs := v.populate(4, 30000)
	var calls int
	var last Summary
	sum := v.sync(SyncOptions{HostList: []byte("encrypted host list"), Progress: func(s Summary) { calls++; last = s }})
	if calls == 0 || last.BytesSent != sum.BytesSent {
		t.Fatalf("progress: %d calls, last %+v, final %+v", calls, last, sum)
	}
	if sum.Placed != 4 || sum.Degraded != 0 || sum.Missing != 0 || sum.MetaIncomplete != 0 {
		t.Fatalf("after sync: %+v", sum)
	}
	for _, p := range packs {
		hs := v.holders(p)
		if len(hs) != 2 {
			t.Fatalf("pack %s on %d hosts, want 2", p.Name[:8], len(hs))
		}
		for id, objs := range hs {
			if len(objs) != 1 || objs[0] != p {
				t.Fatalf("pack %s on %s as %v", p.Name[:8], id, objs)
			}
		}
	}
	// Metadata on every host, the host list included.
	hl := HostListHandle([]byte("encrypted host list"))
	for _, h := range v.hosts {
		for _, want := range []store.Handle{{Type: store.Config, Name: store.ConfigName}, hl} {
			if got, _ := h.Has(v.ctx, []store.Handle{want}); len(got) != 1 {
				t.Fatalf("%s lacks %s", h.id, want)
			}
		}
		if n := len(h.handles(store.Key)) + len(h.handles(store.Index)) + len(h.handles(store.Snapshot)); n != 3 {
			t.Fatalf("%s holds %d metadata objects", h.id, n)
		}
	}
	// A second sync sends nothing.
	again := v.sync(SyncOptions{HostList: []byte("encrypted host list")})
	if again.BytesSent != 0 || again.PiecesSent != 0 {
		t.Fatalf("second sync sent %+v", again)
	}
	// Friends first: host00 (friend, lowest RTT) holds every pack.
	for _, p := range packs {
		if _, ok := v.holders(p)["host00"]; !ok {
			t.Fatalf("pack %s not on the best friend", p.Name[:8])
		}
	}
	// Lose one host: everything still reads back.
	v.hosts[0].set(func(f *fakeHost) { f.offline = true })
	v.checkRestore(v.e)
}

func TestErasureLosingMHosts(t *testing.T) {
	v := newEnv(t, 6, Erasure(3, 2))
	packs := v.populate(5, 40000)
	sum := v.sync(SyncOptions{})
	if sum.Placed != 5 || sum.Degraded+sum.Missing != 0 {
		t.Fatalf("after sync: %+v", sum)
	}
	for _, p := range packs {
		hs := v.holders(p)
		if len(hs) != 5 {
			t.Fatalf("pack %s: shards on %d hosts, want 5", p.Name[:8], len(hs))
		}
		for id, objs := range hs {
			if len(objs) != 1 {
				t.Fatalf("host %s holds %d shards of one pack", id, len(objs))
			}
		}
	}
	// Two hosts go away: every pack still has 3 of its 5 shards.
	v.hosts[0].set(func(f *fakeHost) { f.offline = true })
	v.hosts[2].set(func(f *fakeHost) { f.offline = true })
	v.checkRestore(v.e)
	// A third one too: packs that lost three shards cannot be read.
	v.hosts[1].set(func(f *fakeHost) { f.offline = true })
	s := NewStore(v.e, v.cands, StoreOptions{})
	failed := 0
	for _, p := range packs {
		if _, err := store.ReadAll(v.ctx, s, p); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("every pack read back with three of five shards' hosts gone")
	}
}

func TestNeverTwoPiecesOnOneHost(t *testing.T) {
	// 4 hosts for 3+2 and for 5 copies: one piece of every pack stays
	// unplaced rather than doubling up.
	for _, red := range []Redundancy{Erasure(3, 2), Replicas(5)} {
		t.Run(red.String(), func(t *testing.T) {
			v := newEnv(t, 4, red)
			packs := v.populate(6, 10000)
			sum := v.sync(SyncOptions{})
			if sum.Degraded != 6 || sum.Placed != 0 {
				t.Fatalf("after sync: %+v", sum)
			}
			for _, p := range packs {
				for id, objs := range v.holders(p) {
					if len(objs) != 1 {
						t.Fatalf("host %s holds %d pieces of one pack", id, len(objs))
					}
				}
			}
		})
	}
}

func TestDegradedCompletedLater(t *testing.T) {
	v := newEnv(t, 6, Erasure(3, 2))
	packs := v.populate(3, 20000)
	for _, h := range v.hosts[:3] {
		h.set(func(f *fakeHost) { f.offline = true })
	}
	sum := v.sync(SyncOptions{})
	if sum.Placed != 0 || sum.Degraded != 3 {
		t.Fatalf("with 3 of 6 hosts: %+v", sum)
	}
	if sum.Missing != 0 {
		t.Fatalf("3 shards on 3 hosts is recoverable: %+v", sum)
	}
	st, err := v.e.Status(v.ctx, 0)
	if err != nil || st.Packs.Degraded != 3 {
		t.Fatalf("status: %+v %v", st.Packs, err)
	}
	for _, h := range v.hosts[:3] {
		h.set(func(f *fakeHost) { f.offline = false })
	}
	sum = v.sync(SyncOptions{})
	if sum.Placed != 3 || sum.Degraded != 0 {
		t.Fatalf("hosts back: %+v", sum)
	}
	if sum.MetaIncomplete != 0 {
		t.Fatalf("metadata not completed: %+v", sum)
	}
	for _, p := range packs {
		if n := len(v.holders(p)); n != 5 {
			t.Fatalf("pack on %d hosts", n)
		}
	}
	// With no hosts at all: nothing is placed, all counted missing.
	v2 := newEnv(t, 0, Replicas(2))
	v2.populate(2, 1000)
	if s := v2.sync(SyncOptions{}); s.Missing != 2 || s.MetaIncomplete != 4 {
		t.Fatalf("no hosts: %+v", s)
	}
}

func TestAuditCatchesFlipAndRepairs(t *testing.T) {
	for _, red := range []Redundancy{Replicas(2), Erasure(2, 1)} {
		t.Run(red.String(), func(t *testing.T) {
			v := newEnv(t, 4, red)
			packs := v.populate(3, 20000)
			v.sync(SyncOptions{})
			bad := v.hosts[0]
			if n := bad.corrupt(func(h store.Handle) bool { return h.Type == store.Pack }); n == 0 {
				t.Fatal("host00 holds no pack")
			}
			v.repo.mu.Lock()
			v.repo.objs = map[store.Handle][]byte{} // no local copy: repair from hosts
			v.repo.mu.Unlock()
			rep, err := v.e.Audit(v.ctx, v.cands(), 1000)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Failed == 0 || rep.Errors != 0 {
				t.Fatalf("audit: %+v", rep)
			}
			st, _ := v.e.Status(v.ctx, 0)
			for _, h := range st.Hosts {
				if h.ID == bad.id && (h.Bad == 0 || h.Reputation >= 0.5) {
					t.Fatalf("bad host status %+v", h)
				}
				if h.ID != bad.id && h.AuditsFailed != 0 {
					t.Fatalf("good host failed audits: %+v", h)
				}
			}
			sum, err := v.e.Repair(v.ctx, nil, v.cands())
			if err != nil {
				t.Fatal(err)
			}
			if sum.Placed != 3 || sum.Deleted == 0 {
				t.Fatalf("repair: %+v", sum)
			}
			for _, p := range packs {
				if objs := v.holders(p)[bad.id]; len(objs) != 0 {
					t.Fatalf("pack %s still on the bad host", p.Name[:8])
				}
				if n := len(v.holders(p)); n != red.Pieces() {
					t.Fatalf("pack %s on %d hosts after repair", p.Name[:8], n)
				}
			}
			rep, err = v.e.Audit(v.ctx, v.cands(), 1000)
			if err != nil || rep.Failed != 0 || rep.Passed == 0 {
				t.Fatalf("audit after repair: %+v %v", rep, err)
			}
			// The bad host, the fastest friend, now ranks after the other friend.
			r := v.e.rank(v.cands())
			if r[0].ID() == bad.id || r[0].ID() != "host02" {
				t.Fatalf("bad host ranks %v", r)
			}
		})
	}
}

func TestGoneHostReplaced(t *testing.T) {
	v := newEnv(t, 4, Replicas(2))
	packs := v.populate(2, 5000)
	v.sync(SyncOptions{})
	gone := v.hosts[0]
	gone.set(func(f *fakeHost) { f.offline = true })
	// Within the grace period nothing moves.
	v.clock.advance(DefaultGrace / 2)
	if sum, _ := v.e.Repair(v.ctx, v.repo, v.cands()); sum.PiecesSent != 0 || sum.Placed != 2 {
		t.Fatalf("within grace: %+v", sum)
	}
	v.clock.advance(DefaultGrace)
	sum, err := v.e.Repair(v.ctx, v.repo, v.cands())
	if err != nil || sum.Placed != 2 || sum.PiecesSent == 0 || sum.Dropped == 0 {
		t.Fatalf("after grace: %+v %v", sum, err)
	}
	// It comes back: its stale copies are deleted.
	gone.set(func(f *fakeHost) { f.offline = false })
	if _, err := v.e.Repair(v.ctx, v.repo, v.cands()); err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		if len(v.holders(p)[gone.id]) != 0 {
			t.Fatal("stale copy left on the returning host")
		}
		if len(v.holders(p)) != 2 {
			t.Fatalf("pack on %d hosts", len(v.holders(p)))
		}
	}
}

func TestRenewLeases(t *testing.T) {
	v := newEnv(t, 3, Replicas(2))
	packs := v.populate(2, 5000)
	v.sync(SyncOptions{})
	st, _ := v.e.Status(v.ctx, 7*24*time.Hour)
	if len(st.Expiring) != 0 {
		t.Fatalf("fresh leases expiring: %v", st.Expiring)
	}
	v.clock.advance(DefaultLease - 5*24*time.Hour)
	st, _ = v.e.Status(v.ctx, 7*24*time.Hour)
	if len(st.Expiring) == 0 {
		t.Fatal("no lease expiring soon")
	}
	// host02 lost a pack meanwhile.
	lost := v.hosts[2]
	for _, p := range packs {
		if len(v.holders(p)[lost.id]) > 0 {
			lost.Delete(v.ctx, []store.Handle{p})
			break
		}
	}
	rep, err := v.e.RenewLeases(v.ctx, v.cands(), 7*24*time.Hour)
	if err != nil || rep.Renewed == 0 || rep.Lost != 1 {
		t.Fatalf("renew: %+v %v", rep, err)
	}
	st, _ = v.e.Status(v.ctx, 7*24*time.Hour)
	if len(st.Expiring) != 0 {
		t.Fatalf("still expiring after renewal: %v", st.Expiring)
	}
	want := v.clock.Now().Add(DefaultLease)
	for _, h := range v.hosts {
		h.mu.Lock()
		for oh, o := range h.objs {
			if !o.until.Equal(want) {
				t.Errorf("%s on %s until %v, want %v", oh, h.id, o.until, want)
			}
		}
		h.mu.Unlock()
	}
	if sum, _ := v.e.Repair(v.ctx, v.repo, v.cands()); sum.Placed != 2 || sum.PiecesSent != 1 {
		t.Fatalf("repair of the lost copy: %+v", sum)
	}
}

func TestForget(t *testing.T) {
	v := newEnv(t, 3, Replicas(3))
	packs := v.populate(3, 5000)
	v.sync(SyncOptions{})
	v.hosts[2].set(func(f *fakeHost) { f.offline = true })
	v.repo.remove(packs[0])
	sum, err := v.e.Forget(v.ctx, v.cands(), []store.Handle{packs[0]})
	if err != nil || sum.Deleted != 2 {
		t.Fatalf("forget: %+v %v", sum, err)
	}
	if n := len(v.holders(packs[0])); n != 1 {
		t.Fatalf("forgotten pack on %d hosts", n)
	}
	if c := v.e.CountsOf(packs[1:]); c.Placed != 2 {
		t.Fatalf("others: %+v", c)
	}
	v.hosts[2].set(func(f *fakeHost) { f.offline = false })
	if _, err := v.sync(SyncOptions{}), error(nil); err != nil {
		t.Fatal(err)
	}
	if n := len(v.holders(packs[0])); n != 0 {
		t.Fatalf("forgotten pack still on %d hosts", n)
	}
	st, _ := v.e.Status(v.ctx, 0)
	if st.Packs.Placed != 2 {
		t.Fatalf("status after forget: %+v", st.Packs)
	}
}

func TestRecoveryFromNothing(t *testing.T) {
	for _, red := range []Redundancy{Replicas(2), Erasure(3, 2)} {
		t.Run(red.String(), func(t *testing.T) {
			v := newEnv(t, 5, red)
			packs := v.populate(4, 30000)
			hostList := []byte("host list v1")
			v.sync(SyncOptions{HostList: hostList})
			// A new machine: empty placement record, no local repository.
			fresh := v.open("recovered.db", Redundancy{})
			if !fresh.Empty() {
				t.Fatal("new record not empty")
			}
			v.hosts[4].set(func(f *fakeHost) { f.offline = true }) // one host is down meanwhile
			s := NewStore(fresh, v.cands, StoreOptions{})
			var listed []store.Handle
			for _, typ := range store.Types {
				if err := s.List(v.ctx, typ, func(i store.Info) error {
					listed = append(listed, i.Handle)
					want, ok := v.repo.objs[i.Handle]
					if i.Handle.Type == store.Meta {
						want, ok = hostList, i.Handle == HostListHandle(hostList)
					}
					if !ok || int64(len(want)) != i.Size {
						t.Errorf("listed %s size %d (known %v)", i.Handle, i.Size, ok)
					}
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			if len(listed) != len(v.repo.objs)+1 {
				t.Fatalf("listed %d objects, want %d", len(listed), len(v.repo.objs)+1)
			}
			v.checkRestore(fresh)
			got, err := store.ReadAll(v.ctx, s, HostListHandle(hostList))
			if err != nil || !bytes.Equal(got, hostList) {
				t.Fatalf("host list: %v", err)
			}
			// The recovered node goes on: audits learn the roots, a sync
			// completes what the offline host would hold, nothing is re-sent
			// twice.
			rep, err := fresh.Audit(v.ctx, v.cands(), 1000)
			if err != nil || rep.Failed != 0 {
				t.Fatalf("audit after recovery: %+v %v", rep, err)
			}
			rep, err = fresh.Audit(v.ctx, v.cands(), 1000)
			if err != nil || rep.Failed != 0 || rep.Passed == 0 {
				t.Fatalf("second audit after recovery: %+v %v", rep, err)
			}
			if c := fresh.CountsOf(packs); c.Missing != 0 {
				t.Fatalf("recovered counts: %+v", c)
			}
			// The host that was down comes back: what it holds is adopted,
			// nothing is placed again.
			v.hosts[4].set(func(f *fakeHost) { f.offline = false })
			sum, err := fresh.Sync(v.ctx, nil, v.cands(), SyncOptions{})
			if err != nil || sum.PiecesSent != 0 || sum.Placed != len(packs) || sum.MetaIncomplete != 0 {
				t.Fatalf("sync after the host returned: %+v %v", sum, err)
			}
			st, _ := fresh.Status(v.ctx, 0)
			for _, h := range st.Hosts {
				if h.ID == v.hosts[4].id && h.Pieces == 0 {
					t.Fatalf("the returning host's pieces were not adopted: %+v", h)
				}
			}
		})
	}
}

func TestReadSkipsBadSlowAndOfflineHosts(t *testing.T) {
	for _, red := range []Redundancy{Replicas(3), Erasure(2, 2)} {
		t.Run(red.String(), func(t *testing.T) {
			v := newEnv(t, 4, red)
			v.populate(3, 20000)
			v.sync(SyncOptions{})
			// host00 (fastest) hangs and host01 lies: the copies on host02,
			// or the shards on host02 and host03, are left.
			v.hosts[0].set(func(f *fakeHost) { f.slow = true })
			v.hosts[1].set(func(f *fakeHost) { f.lying = true })
			if !red.Coded() {
				v.hosts[3].set(func(f *fakeHost) { f.offline = true })
			}
			v.checkRestore(v.e)
		})
	}
}

func TestRecordSurvivesReopen(t *testing.T) {
	v := newEnv(t, 3, Erasure(2, 1))
	v.populate(3, 9000)
	v.sync(SyncOptions{HostList: []byte("a")})
	v.e.Audit(v.ctx, v.cands(), 5)
	before, _ := v.e.Status(v.ctx, 0)
	v.e.Close()
	e2 := v.open("placement.db", Erasure(2, 1))
	after, _ := e2.Status(v.ctx, 0)
	if before.Packs != after.Packs || before.StoredBytes != after.StoredBytes || len(before.Hosts) != len(after.Hosts) || before.MetaObjects != after.MetaObjects {
		t.Fatalf("before %+v\nafter %+v", before, after)
	}
	for i := range before.Hosts {
		b, a := before.Hosts[i], after.Hosts[i]
		if !b.LastSeen.Equal(a.LastSeen) {
			t.Fatalf("host %d last seen %v vs %v", i, b.LastSeen, a.LastSeen)
		}
		b.LastSeen, a.LastSeen = time.Time{}, time.Time{}
		if b != a {
			t.Fatalf("host %d: %+v vs %+v", i, before.Hosts[i], after.Hosts[i])
		}
	}
	v.e = e2
	if s := v.sync(SyncOptions{HostList: []byte("a")}); s.PiecesSent != 0 {
		t.Fatalf("reopened engine re-sent %+v", s)
	}
	// A new host list replaces the old one everywhere.
	v.sync(SyncOptions{HostList: []byte("b")})
	for _, h := range v.hosts {
		ms := h.handles(store.Meta)
		if len(ms) != 1 || ms[0] != HostListHandle([]byte("b")) {
			t.Fatalf("%s holds host lists %v", h.id, ms)
		}
	}
}

func TestBlockedAndFullHostsNotUsed(t *testing.T) {
	v := newEnv(t, 3, Replicas(3))
	v.populate(2, 5000)
	c := v.cands()
	c[1].Info.Trust = TrustBlocked
	c[2].Info.FreeBytes = 100 // too small for a pack
	if _, err := v.e.Sync(v.ctx, v.repo, c, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := len(v.hosts[1].handles("")); n != 0 {
		t.Fatalf("blocked host holds %d objects", n)
	}
	if n := len(v.hosts[2].handles(store.Pack)); n != 0 {
		t.Fatalf("full host holds %d packs", n)
	}
}

func TestPutObjectTooFewHosts(t *testing.T) {
	v := newEnv(t, 2, Erasure(3, 2))
	data := []byte("pack")
	h := store.Handle{Type: store.Pack, Name: "c5e3f1e1d7e5a0b5e9f8c2e0d6a0b0c1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7"}
	h.Name = HostListHandle(data).Name
	err := v.e.PutObject(v.ctx, h, data, Redundancy{}, v.cands())
	if !errors.Is(err, ErrTooFewHosts) {
		t.Fatalf("3+2 on 2 hosts: %v", err)
	}
}

func TestSlowHostSkippedAtPut(t *testing.T) {
	v := newEnv(t, 4, Erasure(2, 1))
	v.baseTimeout = 100 * time.Millisecond
	v.e = v.open("slow.db", Erasure(2, 1))
	packs := v.populate(2, 5000)
	v.hosts[0].set(func(f *fakeHost) { f.slow = true }) // the best-ranked host hangs
	sum := v.sync(SyncOptions{})
	if sum.Placed != 2 || sum.Failures == 0 {
		t.Fatalf("sync with a hanging host: %+v", sum)
	}
	for _, p := range packs {
		if len(v.holders(p)["host00"]) != 0 {
			t.Fatal("a piece recorded on the hanging host")
		}
	}
	if sum.MetaIncomplete != 4 {
		t.Fatalf("metadata should be missing on the hanging host only: %+v", sum)
	}
}

func TestConcurrentSyncsNeverDoubleUp(t *testing.T) {
	v := newEnv(t, 6, Erasure(3, 2))
	packs := v.populate(6, 8000)
	s := NewStore(v.e, v.cands, StoreOptions{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := v.e.Sync(v.ctx, v.repo, v.cands(), SyncOptions{}); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for _, p := range packs {
				b := v.repo.objs[p]
				if err := s.Put(v.ctx, p, bytes.NewReader(b), int64(len(b))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range packs {
		hs := v.holders(p)
		if len(hs) != 5 {
			t.Fatalf("pack on %d hosts", len(hs))
		}
		for id, objs := range hs {
			if len(objs) != 1 {
				t.Fatalf("%s holds %v", id, objs)
			}
		}
	}
}

func TestEndedLeasesDoNotCount(t *testing.T) {
	v := newEnv(t, 2, Replicas(2))
	v.populate(2, 3000)
	v.sync(SyncOptions{})
	v.clock.advance(DefaultLease + time.Hour)
	if st, _ := v.e.Status(v.ctx, 0); st.Packs.Missing != 2 || len(st.Expiring) == 0 {
		t.Fatalf("after the lease ended: %+v, %d expiring", st.Packs, len(st.Expiring))
	}
	// These hosts had not collected them yet: a renewal brings them back.
	if rep, err := v.e.RenewLeases(v.ctx, v.cands(), 0); err != nil || rep.Lost != 0 || rep.Renewed == 0 {
		t.Fatalf("renew: %+v %v", rep, err)
	}
	if st, _ := v.e.Status(v.ctx, 0); st.Packs.Placed != 2 {
		t.Fatalf("after renewal: %+v", st.Packs)
	}
}

func TestAuditOfSilentHost(t *testing.T) {
	v := newEnv(t, 3, Replicas(3))
	v.baseTimeout = 100 * time.Millisecond
	v.e = v.open("silent.db", Replicas(3))
	v.populate(2, 9000)
	v.sync(SyncOptions{})
	v.hosts[0].set(func(f *fakeHost) { f.slow = true })
	rep, err := v.e.Audit(v.ctx, v.cands(), 1000)
	if err != nil || rep.Errors == 0 || rep.Failed != 0 || rep.Passed == 0 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
	st, _ := v.e.Status(v.ctx, 0)
	for _, h := range st.Hosts {
		if h.Bad != 0 {
			t.Fatalf("a silent host's copies were marked bad: %+v", h)
		}
		if h.ID == "host00" && h.Reputation >= 0.5 {
			t.Fatalf("silence did not count against the host: %+v", h)
		}
	}
}

func TestOneProcessAtATime(t *testing.T) {
	dir := t.TempDir()
	opts := Options{Path: filepath.Join(dir, "placement.db"), Exclusive: true}
	e1, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), opts); !errors.Is(err, ErrBusy) {
		t.Fatalf("second open: %v", err)
	}
	e1.Close()
	e2, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	e2.Close()
}

func TestOpenReadOnly(t *testing.T) {
	v := newEnv(t, 3, Replicas(2))
	v.populate(2, 1000)
	v.sync(SyncOptions{})
	ro, err := OpenReadOnly(v.ctx, Options{Path: filepath.Join(v.dir, "placement.db"), Now: v.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	st, err := ro.Status(v.ctx, 0)
	if err != nil || st.Packs.Placed != 2 {
		t.Fatalf("read-only status: %+v %v", st.Packs, err)
	}
	if _, err := ro.Sync(v.ctx, v.repo, v.cands(), SyncOptions{}); err == nil {
		t.Fatal("a read-only record accepted writes")
	}
	none, err := OpenReadOnly(v.ctx, Options{Path: filepath.Join(v.dir, "nothing", "placement.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer none.Close()
	if st, err := none.Status(v.ctx, 0); err != nil || st.Packs != (Counts{}) {
		t.Fatalf("status of no record: %+v %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(v.dir, "nothing")); err == nil {
		t.Fatal("reading created a folder")
	}
}

func TestPlacementSpreads(t *testing.T) {
	v := newEnv(t, 6, Replicas(2))
	packs := v.populate(12, 10000)
	c := v.cands()
	for i := range c {
		c[i].Info.Trust = TrustFriend
	}
	if _, err := v.e.Sync(v.ctx, v.repo, c, SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, p := range packs {
		for id := range v.holders(p) {
			per[id]++
		}
	}
	for _, h := range v.hosts {
		if n := per[h.id]; n < 1 || n > 8 { // 4 is a fair share; faster hosts get more
			t.Fatalf("packs per host %v: not spread", per)
		}
	}
}
