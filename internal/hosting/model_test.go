package hosting_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/hosting"
	"github.com/cairn-backup/cairn/internal/store"
)

// modelObject is what the model says a host keeps.
type modelObject struct {
	data  []byte
	until time.Time
}

// TestModel drives one host with a seeded random mix of puts, replacements,
// gets, renews, deletes, clock jumps, garbage collections and restarts, and
// after every step compares what the host says with a plain map.
func TestModel(t *testing.T) {
	steps := 300
	if testing.Short() {
		steps = 80
	}
	for _, seed := range []uint64{1, 2} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			runModel(t, seed, steps)
		})
	}
}

func runModel(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed))
	th := startHost(t, "tcp")
	o := newOwner(t, "tcp", th)
	ctx := context.Background()
	hp := th.h.ID()

	// A pool of content-addressed objects and two mutable names.
	var pool []store.Handle
	content := map[store.Handle][]byte{}
	for i := range 12 {
		b := bytes.Repeat([]byte{byte(i)}, 1+rng.IntN(20000))
		h := pack(b)
		pool = append(pool, h)
		content[h] = b
	}
	cfg := store.Handle{Type: store.Config, Name: store.ConfigName}
	shard := store.Handle{Type: store.Pack, Name: pool[0].Name + "-s02"}
	pool = append(pool, cfg, shard)

	model := map[store.Handle]modelObject{}
	live := func(m modelObject) bool { return !m.until.Before(th.clock.Now()) }
	leaseFrom := func() time.Time { return th.clock.Now().Add(time.Duration(1+rng.IntN(10)) * time.Hour) }

	for step := range steps {
		h := pool[rng.IntN(len(pool))]
		var what string
		switch op := rng.IntN(100); {
		case op < 35:
			what = "put " + h.String()
			data, ok := content[h]
			if !ok {
				data = []byte(fmt.Sprintf("version %d of %s", step, h.Name))
			}
			until := leaseFrom()
			obj := hostclient.Object{Handle: h, Size: int64(len(data)), Hash: crypto.Hash(data), Until: until}
			if _, err := o.client.Put(ctx, hp, obj, bytes.NewReader(data)); err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			if m, ok := model[h]; ok && m.until.After(until) {
				until = m.until // leases never shrink
			}
			model[h] = modelObject{data: data, until: until}
		case op < 60:
			what = "get " + h.String()
			got, err := o.get(th, h, 0, 0)
			m, ok := model[h]
			switch {
			case ok && live(m):
				if err != nil || !bytes.Equal(got, m.data) {
					t.Fatalf("step %d %s: %v (%d bytes, want %d)", step, what, err, len(got), len(m.data))
				}
			case !errors.Is(err, store.ErrNotFound):
				t.Fatalf("step %d %s: got %v, want not found", step, what, err)
			}
		case op < 72:
			what = "renew " + h.String()
			until := leaseFrom()
			missing, err := o.client.Renew(ctx, hp, []store.Handle{h}, until)
			if err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			m, ok := model[h]
			if ok == (len(missing) != 0) {
				t.Fatalf("step %d %s: missing %v, model has it: %v", step, what, missing, ok)
			}
			if ok && until.After(m.until) {
				m.until = until
				model[h] = m
			}
		case op < 82:
			what = "delete " + h.String()
			missing, err := o.client.Delete(ctx, hp, []store.Handle{h})
			if err != nil {
				t.Fatalf("step %d %s: %v", step, what, err)
			}
			if _, ok := model[h]; ok == (len(missing) != 0) {
				t.Fatalf("step %d %s: missing %v, model has it: %v", step, what, missing, ok)
			}
			delete(model, h)
		case op < 90:
			what = "clock"
			th.clock.Add(time.Duration(rng.IntN(180)) * time.Minute)
		case op < 96:
			what = "gc"
			if _, err := th.srv.GC(ctx); err != nil {
				t.Fatalf("step %d gc: %v", step, err)
			}
			for k, m := range model {
				if !live(m) {
					delete(model, k)
				}
			}
		default:
			what = "restart"
			if err := th.srv.Close(); err != nil {
				t.Fatal(err)
			}
			th.start(t, hosting.Config{Dir: th.dir, Settings: generous(), Policy: th.policy, Now: th.clock.Now, Logger: testLogger(t)})
		}
		checkModel(t, step, what, th, o, model)
	}
}

// checkModel compares the host's listing and ledger with the model.
func checkModel(t *testing.T, step int, what string, th *testHost, o *owner, model map[store.Handle]modelObject) {
	t.Helper()
	ctx := context.Background()
	seen := map[store.Handle]bool{}
	var total int64
	err := o.client.List(ctx, th.h.ID(), "", func(hd hostclient.Held) error {
		m, ok := model[hd.Handle]
		if !ok {
			return fmt.Errorf("host lists %s, the model does not", hd.Handle)
		}
		if hd.Hash != crypto.Hash(m.data) || hd.Size != int64(len(m.data)) || !hd.Until.Equal(m.until) {
			return fmt.Errorf("%s: host says %d bytes until %v, model %d until %v", hd.Handle, hd.Size, hd.Until, len(m.data), m.until)
		}
		seen[hd.Handle] = true
		total += hd.Size
		return nil
	})
	if err != nil {
		t.Fatalf("step %d (%s): %v", step, what, err)
	}
	if len(seen) != len(model) {
		t.Fatalf("step %d (%s): host lists %d objects, model %d", step, what, len(seen), len(model))
	}
	led, err := th.srv.Ledger(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if led[o.h.ID()].HeldFor != total {
		t.Fatalf("step %d (%s): ledger %d bytes, listing %d", step, what, led[o.h.ID()].HeldFor, total)
	}
	if f := files(t, th.dir, "objects"); len(f) != len(model) {
		t.Fatalf("step %d (%s): %d files, model %d objects", step, what, len(f), len(model))
	}
}
