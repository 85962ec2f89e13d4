package placement

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

// TestStress runs random operations (backups, hosts going away and
// coming back, hosts corrupting pieces, audits, repairs, renewals, forgets,
// time passing) against a simple model, and checks after each step:
//   - no host holds two pieces of one pack;
//   - every pack the engine counts as placed or degraded reads back
//     byte-identical from the online hosts, without the local copy;
//   - once every host is online and healthy, a repair places everything.
//
// STRESS_SEEDS=n runs n seeds instead of one.
func TestStress(t *testing.T) {
	seeds := 1
	if n, err := strconv.Atoi(os.Getenv("STRESS_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	for seed := 0; seed < seeds; seed++ {
		for _, red := range []Redundancy{Replicas(2), Erasure(3, 2)} {
			t.Run(fmt.Sprintf("%s/seed%d", red, seed), func(t *testing.T) { stress(t, red, uint64(seed)) })
		}
	}
}

func stress(t *testing.T, red Redundancy, seed uint64) {
	{
		{
			v := newEnv(t, 7, red)
			rnd := rand.New(rand.NewPCG(42+seed, uint64(red.Pieces())))
			v.populate(0, 0)
			live := map[store.Handle][]byte{}
			addPack := func() {
				h := v.addPack(1000 + rnd.IntN(20000))
				live[h] = v.repo.objs[h]
			}
			for i := 0; i < 3; i++ {
				addPack()
			}
			for step := 0; step < 120; step++ {
				switch op := rnd.IntN(10); op {
				case 0, 1:
					addPack()
					v.sync(SyncOptions{})
				case 2: // a host goes away or comes back
					h := v.hosts[rnd.IntN(len(v.hosts))]
					h.set(func(f *fakeHost) { f.offline = !f.offline })
				case 3: // a host corrupts a random piece
					h := v.hosts[rnd.IntN(len(v.hosts))]
					hs := h.handles(store.Pack)
					if len(hs) > 0 {
						victim := hs[rnd.IntN(len(hs))]
						h.corrupt(func(x store.Handle) bool { return x == victim })
					}
				case 4:
					if _, err := v.e.Audit(v.ctx, v.cands(), 50); err != nil {
						t.Fatal(err)
					}
				case 5:
					if _, err := v.e.Repair(v.ctx, v.repo, v.cands()); err != nil {
						t.Fatal(err)
					}
				case 6:
					v.clock.advance(time.Duration(rnd.IntN(10)) * 24 * time.Hour)
					if _, err := v.e.RenewLeases(v.ctx, v.cands(), 30*24*time.Hour); err != nil {
						t.Fatal(err)
					}
				case 7: // prune one pack
					for h := range live {
						delete(live, h)
						v.repo.remove(h)
						if _, err := v.e.Forget(v.ctx, v.cands(), []store.Handle{h}); err != nil {
							t.Fatal(err)
						}
						break
					}
				case 8: // repair from the hosts alone (no local copy)
					if _, err := v.e.Repair(v.ctx, nil, v.cands()); err != nil {
						t.Fatal(err)
					}
				default:
					v.sync(SyncOptions{})
				}
				v.checkInvariants(live, false)
			}
			// Everyone back, corruption found and repaired: all placed.
			for _, h := range v.hosts {
				h.set(func(f *fakeHost) { f.offline = false })
			}
			if _, err := v.e.Audit(v.ctx, v.cands(), 1<<20); err != nil {
				t.Fatal(err)
			}
			sum, err := v.e.Repair(v.ctx, v.repo, v.cands())
			if err != nil {
				t.Fatal(err)
			}
			sum = v.sync(SyncOptions{})
			if sum.Placed != len(live) || sum.Degraded+sum.Missing != 0 {
				t.Fatalf("at the end: %+v with %d live packs", sum, len(live))
			}
			v.repo.mu.Lock()
			v.repo.objs = map[store.Handle][]byte{}
			v.repo.mu.Unlock()
			v.checkInvariants(live, true)
		}
	}
}

func (v *env) checkInvariants(live map[store.Handle][]byte, strict bool) {
	v.t.Helper()
	for h := range live {
		for id, objs := range v.holders(h) {
			if len(objs) > 1 {
				v.t.Fatalf("%s holds %d pieces of %s", id, len(objs), h.Name[:8])
			}
		}
	}
	// The load kept incrementally matches a recount.
	v.e.mu.Lock()
	held := map[string]int64{}
	for _, o := range v.e.objs {
		for _, p := range o.pieces {
			if p == nil {
				continue
			}
			for _, r := range p.at {
				if r.state != stateDeleted {
					held[r.host] += p.size
				}
			}
		}
	}
	for id, n := range v.e.held {
		if held[id] != n {
			v.e.mu.Unlock()
			v.t.Fatalf("held on %s: %d, recount %d", id, n, held[id])
		}
	}
	v.e.mu.Unlock()
	s := NewStore(v.e, v.cands, StoreOptions{})
	v.e.mu.Lock()
	online := onlineSet(v.cands())
	var readable []store.Handle
	for h := range live {
		if o := v.e.objs[h]; o != nil && v.e.stateOfLocked(o, online) != 2 {
			readable = append(readable, h)
		}
	}
	v.e.mu.Unlock()
	for _, h := range readable {
		got, err := store.ReadAll(v.ctx, s, h)
		if err != nil && strict {
			v.t.Fatalf("pack %s counted recoverable, read fails: %v", h.Name[:8], err)
		}
		if err != nil {
			// Counted recoverable but not readable: allowed only when the
			// copies counted sit on hosts offline now (within the grace
			// period) or were corrupted since the last audit.
			continue
		}
		if !bytes.Equal(got, live[h]) {
			v.t.Fatalf("pack %s read back wrong", h.Name[:8])
		}
	}
}
