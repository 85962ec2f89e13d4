package local_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
	"github.com/cairn-backup/cairn/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := local.Create(filepath.Join(t.TempDir(), "repo"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// A file left by an interrupted write is neither listed nor readable as
// an object.
func TestTempFilesInvisible(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	s, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.Repeat("ab", 32)
	if err := os.WriteFile(filepath.Join(dir, "data", "ab", ".tmp-"+name+"-123"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.List(context.Background(), store.Pack, func(store.Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("temp file listed as an object")
	}
	if err := s.Put(context.Background(), store.Handle{Type: store.Pack, Name: name}, bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Create(dir); err != nil {
		// Create refuses only when a config exists.
		t.Fatal(err)
	}
}
