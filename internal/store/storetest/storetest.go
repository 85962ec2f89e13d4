// Package storetest is the conformance suite every store.Store passes.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"sort"
	"sync"
	"testing"

	"github.com/cairn-backup/cairn/internal/store"
)

func handle(t store.Type, data []byte) store.Handle {
	s := sha256.Sum256(data)
	return store.Handle{Type: t, Name: hex.EncodeToString(s[:])}
}

// Run checks the store contract on a fresh, empty store.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("PutGetStat", func(t *testing.T) {
		s := newStore(t)
		data := make([]byte, 100000)
		rand.Read(data)
		h := handle(store.Pack, data)
		if err := s.Put(ctx, h, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		got, err := store.ReadAll(ctx, s, h)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back: %v", err)
		}
		info, err := s.Stat(ctx, h)
		if err != nil || info.Size != int64(len(data)) {
			t.Fatalf("stat: %+v %v", info, err)
		}
		part, err := store.ReadAt(ctx, s, h, 1000, 500)
		if err != nil || !bytes.Equal(part, data[1000:1500]) {
			t.Fatalf("ranged read: %v", err)
		}
		rc, err := s.Get(ctx, h, 99000, 0)
		if err != nil {
			t.Fatal(err)
		}
		tail, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(tail, data[99000:]) {
			t.Fatal("read to end from offset")
		}
	})

	t.Run("Missing", func(t *testing.T) {
		s := newStore(t)
		h := handle(store.Snapshot, []byte("nothing"))
		if _, err := s.Get(ctx, h, 0, 0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		if _, err := s.Stat(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("stat missing: %v", err)
		}
		if err := s.Delete(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete missing: %v", err)
		}
	})

	t.Run("InvalidHandle", func(t *testing.T) {
		s := newStore(t)
		for _, h := range []store.Handle{
			{Type: store.Pack, Name: "../escape"},
			{Type: store.Pack, Name: ""},
			{Type: "bogus", Name: "abc"},
			{Type: store.Config, Name: "other"},
		} {
			if err := s.Put(ctx, h, bytes.NewReader(nil), 0); !errors.Is(err, store.ErrInvalidHandle) {
				t.Errorf("put %v: %v", h, err)
			}
		}
	})

	t.Run("WrongSize", func(t *testing.T) {
		s := newStore(t)
		h := handle(store.Index, []byte("abc"))
		if err := s.Put(ctx, h, bytes.NewReader([]byte("abc")), 5); err == nil {
			t.Fatal("put with a wrong size succeeded")
		}
		if _, err := s.Stat(ctx, h); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a failed put left an object: %v", err)
		}
	})

	t.Run("ListDelete", func(t *testing.T) {
		s := newStore(t)
		var want []string
		for i := 0; i < 20; i++ {
			d := []byte{byte(i)}
			h := handle(store.Pack, d)
			if err := s.Put(ctx, h, bytes.NewReader(d), 1); err != nil {
				t.Fatal(err)
			}
			want = append(want, h.Name)
		}
		other := handle(store.Index, []byte("x"))
		if err := s.Put(ctx, other, bytes.NewReader([]byte("x")), 1); err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := s.List(ctx, store.Pack, func(i store.Info) error { got = append(got, i.Handle.Name); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		sort.Strings(want)
		if len(got) != len(want) {
			t.Fatalf("listed %d, want %d", len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatal("listing differs")
			}
		}
		if err := s.Delete(ctx, store.Handle{Type: store.Pack, Name: want[0]}); err != nil {
			t.Fatal(err)
		}
		n := 0
		s.List(ctx, store.Pack, func(store.Info) error { n++; return nil })
		if n != 19 {
			t.Fatalf("after delete: %d objects", n)
		}
		stop := errors.New("stop")
		if err := s.List(ctx, store.Pack, func(store.Info) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("list did not return the callback's error: %v", err)
		}
	})

	t.Run("Config", func(t *testing.T) {
		s := newStore(t)
		h := store.Handle{Type: store.Config, Name: store.ConfigName}
		if err := s.Put(ctx, h, bytes.NewReader([]byte("cfg")), 3); err != nil {
			t.Fatal(err)
		}
		n := 0
		s.List(ctx, store.Config, func(store.Info) error { n++; return nil })
		if n != 1 {
			t.Fatalf("config listed %d times", n)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := make([]byte, 4096)
				rand.Read(d)
				h := handle(store.Pack, d)
				if err := s.Put(ctx, h, bytes.NewReader(d), int64(len(d))); err != nil {
					errs <- err
					return
				}
				got, err := store.ReadAll(ctx, s, h)
				if err != nil || !bytes.Equal(got, d) {
					errs <- errors.New("concurrent read back differs")
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})
}
