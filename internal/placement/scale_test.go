package placement

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestScale times sync, rebuild, audit and status on 5000 packs (PLACEMENT_SCALE=1).
func TestScale(t *testing.T) {
	if os.Getenv("PLACEMENT_SCALE") == "" {
		t.Skip()
	}
	v := newEnv(t, 6, Erasure(3, 2))
	v.populate(5000, 1000)
	start := time.Now()
	s := v.sync(SyncOptions{})
	t.Logf("sync %+v in %v", s.Counts, time.Since(start))
	start = time.Now()
	s = v.sync(SyncOptions{})
	t.Logf("second sync %+v in %v", s.Counts, time.Since(start))
	fresh := v.open("r.db", Redundancy{})
	start = time.Now()
	rep, err := fresh.Rebuild(v.ctx, v.cands())
	t.Logf("rebuild %+v %v in %v", rep, err, time.Since(start))
	start = time.Now()
	a, err := v.e.Audit(v.ctx, v.cands(), 100)
	t.Logf("audit %+v %v in %v", a, err, time.Since(start))
	start = time.Now()
	st, err := v.e.Status(v.ctx, time.Hour)
	t.Logf("status %+v %v in %v", st.Packs, err, time.Since(start))
	v.hosts = nil
	v.repo = nil
	fresh.Close()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	again := v.open("placement.db", Redundancy{})
	runtime.GC()
	runtime.ReadMemStats(&m1)
	t.Logf("record of %d objects in memory: %.1f MiB", len(again.objs), float64(m1.HeapAlloc-m0.HeapAlloc)/(1<<20))
}
