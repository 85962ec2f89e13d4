// Package prune removes data no snapshot needs any more.
//
// Under the exclusive lock, prune finds every blob reachable from every
// snapshot, then sorts each pack: fully used packs stay; fully unused ones
// go; partly used ones whose waste exceeds a threshold are repacked (the
// used blobs' ciphertext is verified and copied into new packs); packs no
// index knows about (left by a crash) go too, as do leftover temporary
// files.
//
// The order of the steps makes prune crash-safe and resumable:
//
//  1. new packs (repacked blobs) are stored; until step 2 they are merely
//     unindexed packs, which check reports as a warning and the next prune
//     removes;
//  2. one new index covering every kept and new pack is stored;
//  3. the old index files are deleted; the packs they alone named become
//     unindexed, harmless;
//  4. the packs no longer needed are deleted, then temporary files.
//
// A crash at any point leaves a repository in which every snapshot is
// complete and check passes; running prune again finishes the job.
// Prune refuses to delete anything when a snapshot, tree or index cannot be
// read, since it could not know what the damaged object needs.
package prune

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
)

// ErrDamaged is returned when prune refuses to run because the repository
// is damaged: deleting anything could lose data.
// It wraps repo.ErrCorrupt.
var ErrDamaged = fmt.Errorf("prune refuses to delete anything: %w", repo.ErrCorrupt)

// Options tune prune.
type Options struct {
	// MaxUnused is the share of a pack's bytes, in percent, that may be
	// unused before the pack is repacked. 0 repacks every pack with any
	// unused blob.
	MaxUnused float64
	// DryRun computes and reports but changes nothing.
	DryRun bool
	// Progress, if set, is told which step runs.
	Progress func(step string)
}

// Stats say what prune did (or, with DryRun, would do).
type Stats struct {
	Snapshots      int   `json:"snapshots"`
	UsedBlobs      int   `json:"used_blobs"`
	PacksTotal     int   `json:"packs_total"`
	PacksKept      int   `json:"packs_kept"`
	PacksDeleted   int   `json:"packs_deleted"`   // fully unused
	PacksRepacked  int   `json:"packs_repacked"`  // partly used, rewritten
	PacksUnindexed int   `json:"packs_unindexed"` // not in any index, removed
	PacksWritten   int   `json:"packs_written"`
	BlobsRemoved   int   `json:"blobs_removed"`
	BlobsRepacked  int   `json:"blobs_repacked"`
	BytesRepacked  int64 `json:"bytes_repacked"`
	BytesFreed     int64 `json:"bytes_freed"`
	IndexesWritten int   `json:"indexes_written"`
	IndexesRemoved int   `json:"indexes_removed"`
	TempFiles      int   `json:"temp_files"`
	DryRun         bool  `json:"dry_run"`
}

// Run takes the exclusive lock and prunes.
func Run(ctx context.Context, r *repo.Repository, o Options) (*Stats, error) {
	lock, err := r.LockExclusive(ctx)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock(ctx)
	return RunLocked(ctx, r, o)
}

// indexPacksPerFile bounds the size of one index object.
const indexPacksPerFile = 8192

// tempRemover is implemented by stores that can remove leftover temporary
// files (store/local).
type tempRemover interface {
	RemoveTemp(ctx context.Context, olderThan func(fs.FileInfo) bool) (int, error)
}

type plan struct {
	keep    []repo.IndexPack
	repack  []repo.IndexPack
	needed  map[crypto.ID]bool // blobs to copy out of repacked packs
	remove  []crypto.ID        // packs to delete at the end
	present map[crypto.ID]int64
	indexes []string
	rewrite bool // whether a new index must be written
}

// RunLocked prunes; the caller holds the exclusive lock.
func RunLocked(ctx context.Context, r *repo.Repository, o Options) (*Stats, error) {
	start := r.Now()
	st := &Stats{DryRun: o.DryRun}
	step := func(s string) {
		if o.Progress != nil {
			o.Progress(s)
		}
	}

	step("loading indexes")
	packs, indexNames, err := loadIndexes(ctx, r)
	if err != nil {
		return nil, err
	}
	step("finding used data")
	used, err := usedBlobs(ctx, r, st)
	if err != nil {
		return nil, err
	}
	st.UsedBlobs = len(used)

	step("planning")
	p, err := makePlan(ctx, r, o, packs, used, st)
	if err != nil {
		return nil, err
	}
	p.indexes = indexNames
	if o.DryRun {
		return st, nil
	}

	// 1. Copy the used blobs of the repacked packs into new packs.
	var newPacks []repo.IndexPack
	if len(p.repack) > 0 {
		step("repacking")
		newPacks, err = repack(ctx, r, p, st)
		if err != nil {
			return st, err
		}
	}

	// 2. One new index covering every pack that stays.
	keepIndex := map[string]bool{}
	if p.rewrite || len(newPacks) > 0 {
		step("writing index")
		all := append(append([]repo.IndexPack{}, p.keep...), newPacks...)
		sort.Slice(all, func(a, b int) bool { return bytes.Compare(all[a].ID[:], all[b].ID[:]) < 0 })
		for len(all) > 0 {
			n := min(len(all), indexPacksPerFile)
			name, err := r.SaveIndexFile(ctx, &repo.IndexFile{Packs: all[:n]})
			if err != nil {
				return st, fmt.Errorf("prune: %w", err)
			}
			keepIndex[name] = true
			st.IndexesWritten++
			all = all[n:]
		}
		// 3. Only now that the new index is durable, drop the old ones.
		step("removing old indexes")
		for _, name := range p.indexes {
			if keepIndex[name] {
				continue
			}
			if err := r.Store().Delete(ctx, store.Handle{Type: store.Index, Name: name}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return st, fmt.Errorf("prune: remove index %s: %w", name, err)
			}
			st.IndexesRemoved++
		}
	}

	// 4. Delete the packs nothing needs.
	step("removing packs")
	for _, id := range p.remove {
		if err := r.Store().Delete(ctx, store.Handle{Type: store.Pack, Name: id.String()}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return st, fmt.Errorf("prune: remove pack %s: %w", id, err)
		}
	}
	st0 := r.Store()
	if l, ok := st0.(interface{ Local() store.Store }); ok {
		st0 = l.Local() // a tiered store: temporary files live in the local part
	}
	if tr, ok := st0.(tempRemover); ok {
		n, err := tr.RemoveTemp(ctx, func(fi fs.FileInfo) bool { return fi.ModTime().Before(start) })
		if err != nil {
			return st, fmt.Errorf("prune: remove temporary files: %w", err)
		}
		st.TempFiles = n
	}
	return st, nil
}

// loadIndexes reads every index file. A damaged one stops prune: the packs
// it names might hold blobs snapshots need.
func loadIndexes(ctx context.Context, r *repo.Repository) (map[crypto.ID]repo.IndexPack, []string, error) {
	var names []string
	err := r.Store().List(ctx, store.Index, func(i store.Info) error {
		names = append(names, i.Handle.Name)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("prune: list indexes: %w", err)
	}
	sort.Strings(names)
	packs := map[crypto.ID]repo.IndexPack{}
	for _, name := range names {
		f, err := r.LoadIndexFile(ctx, name)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("prune: index %s: %v: %w", name, err, ErrDamaged)
		}
		for _, p := range f.Packs {
			if _, ok := packs[p.ID]; !ok {
				packs[p.ID] = p
			}
			r.Index().AddPack(p)
		}
	}
	return packs, names, nil
}

// usedBlobs walks every tree of every snapshot.
func usedBlobs(ctx context.Context, r *repo.Repository, st *Stats) (map[crypto.ID]bool, error) {
	snaps, bad, err := r.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("prune: %v: %w", bad[0], ErrDamaged)
	}
	st.Snapshots = len(snaps)
	used := map[crypto.ID]bool{}
	var walk func(id crypto.ID) error
	walk = func(id crypto.ID) error {
		if used[id] {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		used[id] = true
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("prune: tree %s: %v: %w", id, err, ErrDamaged)
		}
		for _, n := range t.Nodes {
			for _, b := range n.Content {
				if !r.Index().Has(b) {
					return fmt.Errorf("prune: data blob %s of %q is not in any index: %w", b, n.Name, ErrDamaged)
				}
				used[b] = true
			}
			if n.Subtree != nil {
				if err := walk(*n.Subtree); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, s := range snaps {
		if err := walk(s.Tree); err != nil {
			return nil, err
		}
	}
	return used, nil
}

// makePlan decides the fate of every pack. Each used blob is claimed by
// one pack, preferring packs that are used most, so that duplicate copies
// (from concurrent backups or an interrupted prune) count as unused.
func makePlan(ctx context.Context, r *repo.Repository, o Options, packs map[crypto.ID]repo.IndexPack, used map[crypto.ID]bool, st *Stats) (*plan, error) {
	p := &plan{needed: map[crypto.ID]bool{}, present: map[crypto.ID]int64{}}
	err := r.Store().List(ctx, store.Pack, func(i store.Info) error {
		id, err := crypto.ParseID(i.Handle.Name)
		if err != nil {
			return nil // not ours
		}
		p.present[id] = i.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prune: list packs: %w", err)
	}
	st.PacksTotal = len(p.present)

	type cand struct {
		ip        repo.IndexPack
		usedBytes int64
	}
	var cands []cand
	for id, ip := range packs {
		size, ok := p.present[id]
		if !ok || size != ip.Size {
			// Missing or damaged: it leaves the index. If it held the
			// only copy of a used blob, the claim check below refuses.
			p.rewrite = true
			if ok {
				p.remove = append(p.remove, id)
				st.PacksDeleted++
				st.BytesFreed += size
			}
			continue
		}
		var ub int64
		for _, b := range ip.Blobs {
			if used[b.ID] {
				ub += int64(b.Length)
			}
		}
		cands = append(cands, cand{ip, ub})
	}
	sort.Slice(cands, func(a, b int) bool {
		fa := float64(cands[a].usedBytes) / float64(cands[a].ip.Size)
		fb := float64(cands[b].usedBytes) / float64(cands[b].ip.Size)
		if fa != fb {
			return fa > fb
		}
		return bytes.Compare(cands[a].ip.ID[:], cands[b].ip.ID[:]) < 0
	})
	claimed := make(map[crypto.ID]bool, len(used))
	for _, c := range cands {
		var neededN int
		var unusedBytes int64
		var mine []crypto.ID
		for _, b := range c.ip.Blobs {
			if used[b.ID] && !claimed[b.ID] {
				claimed[b.ID] = true
				neededN++
				mine = append(mine, b.ID)
			} else {
				unusedBytes += int64(b.Length)
			}
		}
		switch {
		case neededN == 0:
			p.remove = append(p.remove, c.ip.ID)
			st.PacksDeleted++
			st.BlobsRemoved += len(c.ip.Blobs)
			st.BytesFreed += c.ip.Size
			p.rewrite = true
		case unusedBytes == 0 || float64(unusedBytes) <= o.MaxUnused/100*float64(c.ip.Size):
			p.keep = append(p.keep, c.ip)
			st.PacksKept++
		default:
			p.repack = append(p.repack, c.ip)
			for _, id := range mine {
				p.needed[id] = true
			}
			p.remove = append(p.remove, c.ip.ID)
			st.PacksRepacked++
			st.BlobsRemoved += len(c.ip.Blobs) - neededN
			st.BlobsRepacked += neededN
			st.BytesFreed += unusedBytes
			st.BytesRepacked += c.ip.Size - unusedBytes
			p.rewrite = true
		}
	}
	for id := range used {
		if !claimed[id] {
			return nil, fmt.Errorf("prune: blob %s is used but no pack holding it is present: %w", id, ErrDamaged)
		}
	}
	for id, size := range p.present {
		if _, ok := packs[id]; !ok {
			p.remove = append(p.remove, id)
			st.PacksUnindexed++
			st.BytesFreed += size
		}
	}
	if len(p.keep) == 0 && len(p.repack) == 0 && len(packs) > 0 {
		p.rewrite = true
	}
	sort.Slice(p.remove, func(a, b int) bool { return bytes.Compare(p.remove[a][:], p.remove[b][:]) < 0 })
	return p, nil
}

// repack copies the needed blobs of the packs to repack into new packs,
// trees and data apart, each at most about the configured pack size.
func repack(ctx context.Context, r *repo.Repository, p *plan, st *Stats) ([]repo.IndexPack, error) {
	limit := int64(r.Config().PackSize)
	batches := map[repo.BlobType][]repo.CopiedBlob{}
	sizes := map[repo.BlobType]int64{}
	var out []repo.IndexPack
	flush := func(t repo.BlobType) error {
		if len(batches[t]) == 0 {
			return nil
		}
		ip, err := r.WritePack(ctx, batches[t])
		if err != nil {
			return fmt.Errorf("prune: %w", err)
		}
		out = append(out, ip)
		st.PacksWritten++
		batches[t] = nil
		sizes[t] = 0
		return nil
	}
	for _, ip := range p.repack {
		b, err := r.ReadPack(ctx, ip.ID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("prune: repack pack %s: %v: %w", ip.ID, err, ErrDamaged)
		}
		for _, e := range ip.Blobs {
			if !p.needed[e.ID] {
				continue
			}
			delete(p.needed, e.ID) // a pack listing a blob twice copies it once
			if int64(e.Offset)+int64(e.Length) > int64(len(b)) {
				return nil, fmt.Errorf("prune: blob %s lies outside pack %s: %w", e.ID, ip.ID, ErrDamaged)
			}
			ct := b[e.Offset : e.Offset+e.Length]
			if _, err := r.DecodeBlob(e, ct, nil); err != nil {
				return nil, fmt.Errorf("prune: blob %s in pack %s: %v: %w", e.ID, ip.ID, err, ErrDamaged)
			}
			// Copied, so that the batch does not pin every source pack.
			batches[e.Type] = append(batches[e.Type], repo.CopiedBlob{BlobEntry: e, Ciphertext: bytes.Clone(ct)})
			sizes[e.Type] += int64(e.Length)
			if sizes[e.Type] >= limit {
				if err := flush(e.Type); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, t := range []repo.BlobType{repo.DataBlob, repo.TreeBlob} {
		if err := flush(t); err != nil {
			return nil, err
		}
	}
	return out, nil
}
