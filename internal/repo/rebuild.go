package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// RebuildReport says what RebuildIndex did.
type RebuildReport struct {
	PacksRead    int      `json:"packs_read"`
	BlobsIndexed int      `json:"blobs_indexed"`
	Damaged      []string `json:"damaged_packs,omitempty"`
	Removed      []string `json:"removed_indexes,omitempty"`
}

// RebuildIndex reads the headers of the packs no readable index covers
// (of every pack with all set) and writes an index for them; with all set,
// the old index files are deleted once the new one is stored. The caller
// holds the exclusive lock. Packs whose header is damaged are named and
// left alone.
func (r *Repository) RebuildIndex(ctx context.Context, all bool) (*RebuildReport, error) {
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	known := r.index.Packs()
	rep := &RebuildReport{}
	f := &IndexFile{}
	err := r.st.List(ctx, store.Pack, func(i store.Info) error {
		id, err := crypto.ParseID(i.Handle.Name)
		if err != nil {
			return nil
		}
		if _, ok := known[id]; ok && !all {
			return nil
		}
		entries, size, err := r.ReadPackHeader(ctx, id)
		if err != nil {
			if errors.Is(err, ErrCorrupt) {
				rep.Damaged = append(rep.Damaged, id.String())
				return nil
			}
			return err
		}
		rep.PacksRead++
		rep.BlobsIndexed += len(entries)
		f.Packs = append(f.Packs, IndexPack{ID: id, Size: size, Blobs: entries})
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("rebuild index: %w", err)
	}
	old := append(r.IndexNames(), r.DamagedIndexes()...)
	if len(f.Packs) > 0 {
		name, err := r.SaveIndexFile(ctx, f)
		if err != nil {
			return rep, fmt.Errorf("rebuild index: %w", err)
		}
		old = removeName(old, name)
	}
	if !all {
		return rep, nil
	}
	for _, name := range old {
		if err := r.st.Delete(ctx, store.Handle{Type: store.Index, Name: name}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return rep, fmt.Errorf("remove old index: %w", err)
		}
		rep.Removed = append(rep.Removed, name)
	}
	return rep, nil
}

func removeName(names []string, n string) []string {
	out := names[:0]
	for _, x := range names {
		if x != n {
			out = append(out, x)
		}
	}
	return out
}
