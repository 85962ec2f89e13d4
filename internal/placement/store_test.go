package placement

import (
	"testing"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/storetest"
)

func TestStoreConformance(t *testing.T) {
	for _, red := range []Redundancy{Replicas(2), Erasure(3, 2)} {
		t.Run(red.String(), func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store {
				v := newEnv(t, 5, red)
				return NewStore(v.e, v.cands, StoreOptions{Redundancy: red})
			})
		})
	}
}

// TestStorePutPlacesEverywhere: --no-local, the repository writes through
// the store only.
func TestStorePutPlacesEverywhere(t *testing.T) {
	v := newEnv(t, 5, Erasure(3, 2))
	s := NewStore(v.e, v.cands, StoreOptions{})
	v.populate(3, 25000)
	for h, b := range v.repo.objs {
		if err := s.Put(v.ctx, h, bytesReader(b), int64(len(b))); err != nil {
			t.Fatalf("put %s: %v", h, err)
		}
	}
	for _, h := range v.hosts {
		if n := len(h.handles(store.Pack)); n != 3 {
			t.Fatalf("%s holds %d shards, want 3 (one of each pack)", h.id, n)
		}
		if n := len(h.handles(store.Config)) + len(h.handles(store.Key)) + len(h.handles(store.Index)) + len(h.handles(store.Snapshot)); n != 4 {
			t.Fatalf("%s holds %d metadata objects", h.id, n)
		}
	}
	// Nothing more for a sync from the same objects to do.
	if sum := v.sync(SyncOptions{}); sum.PiecesSent != 0 || sum.Placed != 3 {
		t.Fatalf("sync after puts: %+v", sum)
	}
	// A new engine (recovery) reads everything back through a store.
	v.checkRestore(v.open("again.db", Redundancy{}))
}
