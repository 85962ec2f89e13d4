package tiered_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/mem"
	"github.com/cairn-backup/cairn/internal/store/storetest"
	"github.com/cairn-backup/cairn/internal/store/tiered"
)

func TestConformance(t *testing.T) {
	for _, wl := range []bool{true, false} {
		storetest.Run(t, func(t *testing.T) store.Store {
			remote := mem.New()
			return tiered.New(mem.New(), func(context.Context) (store.Store, error) { return remote, nil }, wl)
		})
	}
}

func TestFallback(t *testing.T) {
	ctx := context.Background()
	local, remote := mem.New(), mem.New()
	opened := 0
	s := tiered.New(local, func(context.Context) (store.Store, error) { opened++; return remote, nil }, true)
	h := store.Handle{Type: store.Pack, Name: "abcd"}
	remote.Put(ctx, h, bytes.NewReader([]byte("remote")), 6)
	lh := store.Handle{Type: store.Pack, Name: "ef01"}
	if err := s.Put(ctx, lh, bytes.NewReader([]byte("local")), 5); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Stat(ctx, lh); err != nil {
		t.Fatal("write did not go to the local store")
	}
	if _, err := store.ReadAll(ctx, s, lh); err != nil || opened != 0 {
		t.Fatalf("a local hit opened the remote store (%d)", opened)
	}
	b, err := store.ReadAll(ctx, s, h)
	if err != nil || string(b) != "remote" || opened != 1 {
		t.Fatalf("fallback read: %q %v", b, err)
	}
}
