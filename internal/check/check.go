// Package check verifies a repository: its structure (config, key files,
// indexes, packs, snapshots and every tree reachable from them) and, when
// asked, every byte of every pack.
//
// Check never changes the repository. It reports what it finds as a list of
// problems, each naming the damaged object by type and ID and the snapshots
// it affects, plus warnings about things that are harmless but worth
// knowing (packs no index knows about, which a crash leaves behind and prune
// removes). A repository with no problems restores every snapshot.
package check

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
)

// ErrDamaged is wrapped by the error callers report when a check found
// problems: the repository is damaged.
var ErrDamaged = errors.New("the repository is damaged")

// Err returns nil when the check found no errors, else an error wrapping
// ErrDamaged that names the damaged objects (the first few).
func (r *Result) Err() error {
	if r.OK() {
		return nil
	}
	var names []string
	for i, p := range r.Errors {
		if i == 5 {
			names = append(names, fmt.Sprintf("and %d more", len(r.Errors)-5))
			break
		}
		names = append(names, p.Kind+" "+short(p.ID))
	}
	what := "problems"
	if len(r.Errors) == 1 {
		what = "problem"
	}
	return fmt.Errorf("check found %d %s (%s): %w", len(r.Errors), what, strings.Join(names, ", "), ErrDamaged)
}

// Kinds of objects a problem can name.
const (
	KindConfig   = "config"
	KindKey      = "key"
	KindIndex    = "index"
	KindPack     = "pack"
	KindSnapshot = "snapshot"
	KindTree     = "tree"
	KindBlob     = "blob"
	KindLock     = "lock"
)

// Problem is one damaged (or, for a warning, suspicious) object.
type Problem struct {
	Kind    string `json:"kind"`
	ID      string `json:"id"`
	Message string `json:"message"`
	// Snapshots are the IDs of the snapshots that cannot be restored
	// completely because of this problem.
	Snapshots []string `json:"snapshots,omitempty"`
}

func (p Problem) String() string {
	s := fmt.Sprintf("%s %s: %s", p.Kind, p.ID, p.Message)
	if n := len(p.Snapshots); n > 0 {
		s += fmt.Sprintf(" (affects %d snapshot", n)
		if n > 1 {
			s += "s"
		}
		s += ":"
		for i, id := range p.Snapshots {
			if i == 5 {
				s += " ..."
				break
			}
			s += " " + short(id)
		}
		s += ")"
	}
	return s
}

// Stats counts what was checked.
type Stats struct {
	Keys      int   `json:"keys"`
	Indexes   int   `json:"indexes"`
	Packs     int   `json:"packs"`
	Snapshots int   `json:"snapshots"`
	Trees     int   `json:"trees"`
	DataBlobs int   `json:"data_blobs"`
	PacksRead int   `json:"packs_read"`
	BytesRead int64 `json:"bytes_read"`
}

// Result is what a check found.
type Result struct {
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
	Stats    Stats     `json:"stats"`
}

// OK reports whether no errors were found (warnings are fine).
func (r *Result) OK() bool { return len(r.Errors) == 0 }

// Progress is a reading of the check's counters for a display.
type Progress struct {
	Phase string // "index", "packs", "read-data", "snapshots", "trees"
	Done  int64
	Total int64 // 0 when unknown
}

// Options say how thorough the check is.
type Options struct {
	// ReadData reads every pack completely: its SHA-256 must equal its
	// name, its header must decrypt and match the index, and every blob
	// must decrypt and hash to its ID.
	ReadData bool
	// ReadDataSubset, between 0 and 1, reads only that fraction of the
	// packs (chosen at random); 0 means all of them. Implies ReadData.
	ReadDataSubset float64
	// Workers reading packs (default 2).
	Workers int
	// Progress, if set, is called as the check goes.
	Progress func(Progress)
}

// checker holds the state of one run.
type checker struct {
	r    *repo.Repository
	o    Options
	res  *Result
	mu   sync.Mutex
	errs []*Problem // indexes into this slice are problem keys

	packs     map[crypto.ID]*packInfo // indexed packs
	blobPacks map[crypto.ID][]crypto.ID
	blobType  map[crypto.ID]repo.BlobType
	badPack   map[crypto.ID]int               // pack → problem key (all its blobs unusable)
	badBlob   map[crypto.ID]map[crypto.ID]int // pack → blob → problem key
	damaged   map[crypto.ID]int               // blob → problem key, when no good copy is left
	treeMemo  map[crypto.ID][]int
	snapIDs   []crypto.ID
	missing   map[crypto.ID]int // blob referenced but not indexed → problem key
	seenData  map[crypto.ID]struct{}
}

type packInfo struct {
	size  int64
	blobs []repo.BlobEntry
	index string
}

// Run checks the repository. The error reports only why the check itself
// could not go on (a listing failed, the context was cancelled); damage is
// reported in the Result.
func Run(ctx context.Context, r *repo.Repository, o Options) (*Result, error) {
	if o.ReadDataSubset > 0 {
		o.ReadData = true
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	c := &checker{
		r: r, o: o, res: &Result{},
		packs: map[crypto.ID]*packInfo{}, blobPacks: map[crypto.ID][]crypto.ID{}, blobType: map[crypto.ID]repo.BlobType{},
		badPack: map[crypto.ID]int{}, badBlob: map[crypto.ID]map[crypto.ID]int{}, damaged: map[crypto.ID]int{},
		treeMemo: map[crypto.ID][]int{}, missing: map[crypto.ID]int{}, seenData: map[crypto.ID]struct{}{},
	}
	// Snapshots are listed first: a backup saves its snapshot only after
	// its index, so every snapshot listed now has its index stored by the
	// time the indexes are listed, even while backups run.
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	c.snapIDs = ids
	steps := []func(context.Context) error{c.checkKeys, c.checkIndexes, c.checkPacks, c.readData, c.settleDamage, c.checkSnapshots}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for _, p := range c.errs {
		sort.Strings(p.Snapshots)
		c.res.Errors = append(c.res.Errors, *p)
	}
	if c.res.Errors == nil {
		c.res.Errors = []Problem{}
	}
	if c.res.Warnings == nil {
		c.res.Warnings = []Problem{}
	}
	return c.res, nil
}

// problem records an error and returns its key.
func (c *checker) problem(kind, id, format string, args ...any) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, &Problem{Kind: kind, ID: id, Message: trimName(fmt.Sprintf(format, args...), id)})
	return len(c.errs) - 1
}

// trimName drops a leading "index 1a2b3c4d: " from a message about that
// very object: the problem names it already.
func trimName(msg, id string) string {
	for {
		i := strings.Index(msg, " "+short(id)+": ")
		if i < 0 || i > 12 || strings.Contains(msg[:i], " ") {
			return msg
		}
		msg = msg[i+len(short(id))+3:]
	}
}

func (c *checker) warn(kind, id, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.res.Warnings = append(c.res.Warnings, Problem{Kind: kind, ID: id, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) progress(phase string, done, total int64) {
	if c.o.Progress != nil {
		c.o.Progress(Progress{Phase: phase, Done: done, Total: total})
	}
}

func short(s string) string {
	if len(s) > 8 {
		return s[:8]
	}
	return s
}

// list returns the names of the objects of type t with their sizes.
func (c *checker) list(ctx context.Context, t store.Type) (map[string]int64, error) {
	out := map[string]int64{}
	err := c.r.Store().List(ctx, t, func(i store.Info) error {
		out[i.Handle.Name] = i.Size
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t, err)
	}
	return out, nil
}

func sortedNames(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (c *checker) checkKeys(ctx context.Context) error {
	names, err := c.list(ctx, store.Key)
	if err != nil {
		return err
	}
	for _, name := range sortedNames(names) {
		c.res.Stats.Keys++
		b, err := store.ReadAll(ctx, c.r.Store(), store.Handle{Type: store.Key, Name: name})
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // removed meanwhile
			}
			c.problem(KindKey, name, "cannot be read: %v", err)
			continue
		}
		if crypto.Hash(b).String() != name {
			c.problem(KindKey, name, "content does not match its ID")
			continue
		}
		if _, err := crypto.ParseKeyFile(b); err != nil {
			c.problem(KindKey, name, "does not parse: %v", err)
		}
	}
	if c.res.Stats.Keys == 0 {
		c.problem(KindKey, "-", "the repository has no key files")
	}
	return nil
}

func (c *checker) checkIndexes(ctx context.Context) error {
	names, err := c.list(ctx, store.Index)
	if err != nil {
		return err
	}
	all := sortedNames(names)
	for i, name := range all {
		c.progress("index", int64(i), int64(len(all)))
		f, err := c.r.LoadIndexFile(ctx, name)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // merged away by a backup that just finished
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c.problem(KindIndex, name, "%v", err)
			continue
		}
		c.res.Stats.Indexes++
		for _, p := range f.Packs {
			if old, ok := c.packs[p.ID]; ok {
				if old.size != p.Size || len(old.blobs) != len(p.Blobs) {
					c.problem(KindIndex, name, "describes pack %s differently from index %s", p.ID, old.index)
				}
				continue
			}
			c.packs[p.ID] = &packInfo{size: p.Size, blobs: p.Blobs, index: name}
			for _, b := range p.Blobs {
				c.blobPacks[b.ID] = append(c.blobPacks[b.ID], p.ID)
				if _, ok := c.blobType[b.ID]; !ok {
					c.blobType[b.ID] = b.Type
				}
			}
			c.r.Index().AddPack(p)
		}
	}
	return nil
}

func (c *checker) checkPacks(ctx context.Context) error {
	present, err := c.list(ctx, store.Pack)
	if err != nil {
		return err
	}
	ids := make([]crypto.ID, 0, len(c.packs))
	for id := range c.packs {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(a, b int) bool { return bytes.Compare(ids[a][:], ids[b][:]) < 0 })
	for _, id := range ids {
		p := c.packs[id]
		c.res.Stats.Packs++
		size, ok := present[id.String()]
		switch {
		case !ok:
			c.badPack[id] = c.problem(KindPack, id.String(), "missing (listed in index %s)", short(p.index))
		case size != p.size:
			c.badPack[id] = c.problem(KindPack, id.String(), "has %d bytes, the index says %d (truncated or damaged)", size, p.size)
		}
	}
	for _, name := range sortedNames(present) {
		id, err := crypto.ParseID(name)
		if err != nil {
			c.warn(KindPack, name, "file with an unexpected name in the pack folder")
			continue
		}
		if _, ok := c.packs[id]; !ok {
			c.warn(KindPack, name, "not in any index (left by an interrupted backup or prune; cairn prune removes it)")
		}
	}
	return nil
}

// readData reads the selected packs completely and verifies every byte.
func (c *checker) readData(ctx context.Context) error {
	if !c.o.ReadData {
		return nil
	}
	var ids []crypto.ID
	for id := range c.packs {
		if _, bad := c.badPack[id]; !bad {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(a, b int) bool { return bytes.Compare(ids[a][:], ids[b][:]) < 0 })
	if f := c.o.ReadDataSubset; f > 0 && f < 1 {
		rand.Shuffle(len(ids), func(a, b int) { ids[a], ids[b] = ids[b], ids[a] })
		n := int(float64(len(ids))*f + 0.999999)
		ids = ids[:min(max(n, 1), len(ids))]
	}
	total := int64(len(ids))
	work := make(chan crypto.ID)
	var wg sync.WaitGroup
	var done int64
	var firstErr error
	for w := 0; w < c.o.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				n, err := c.readPack(ctx, id)
				c.mu.Lock()
				done++
				c.res.Stats.PacksRead++
				c.res.Stats.BytesRead += n
				if err != nil && firstErr == nil {
					firstErr = err
				}
				c.progress("read-data", done, total) // under mu: one call at a time
				c.mu.Unlock()
			}
		}()
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		work <- id
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

// readPack verifies one pack. Its error is only for a cancelled context;
// damage is recorded as problems.
func (c *checker) readPack(ctx context.Context, id crypto.ID) (int64, error) {
	p := c.packs[id]
	b, err := store.ReadAll(ctx, c.r.Store(), store.Handle{Type: store.Pack, Name: id.String()})
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		k := c.problem(KindPack, id.String(), "cannot be read: %v", err)
		c.mu.Lock()
		c.badPack[id] = k
		c.mu.Unlock()
		return 0, nil
	}
	if sha256.Sum256(b) != id {
		c.problem(KindPack, id.String(), "content does not match its ID (SHA-256): the pack is damaged")
	}
	entries, err := repo.DecodePack(c.r.Keys(), b)
	if err != nil {
		c.problem(KindPack, id.String(), "header: %v", err)
	} else if msg := compareHeader(entries, p.blobs); msg != "" {
		c.problem(KindPack, id.String(), "header does not match the index: %s", msg)
	}
	for _, e := range p.blobs {
		if int64(e.Offset)+int64(e.Length) > int64(len(b)) {
			c.markBadBlob(id, e.ID, c.problem(KindBlob, e.ID.String(), "outside pack %s", id.Short()))
			continue
		}
		ct := b[e.Offset : e.Offset+e.Length]
		if _, err := c.r.DecodeBlob(e, ct, nil); err != nil {
			msg := strings.TrimPrefix(err.Error(), "blob "+e.ID.Short()+": ")
			c.markBadBlob(id, e.ID, c.problem(KindBlob, e.ID.String(), "%s blob in pack %s is damaged: %s", e.Type, id.Short(), msg))
		}
	}
	return int64(len(b)), nil
}

func (c *checker) markBadBlob(pack, blob crypto.ID, key int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.badBlob[pack]
	if m == nil {
		m = map[crypto.ID]int{}
		c.badBlob[pack] = m
	}
	m[blob] = key
}

func compareHeader(header, index []repo.BlobEntry) string {
	if len(header) != len(index) {
		return fmt.Sprintf("%d blobs in the header, %d in the index", len(header), len(index))
	}
	byID := make(map[crypto.ID]repo.BlobEntry, len(header))
	for _, e := range header {
		byID[e.ID] = e
	}
	for _, e := range index {
		h, ok := byID[e.ID]
		if !ok {
			return fmt.Sprintf("blob %s is not in the header", e.ID.Short())
		}
		if h != e {
			return fmt.Sprintf("blob %s is described differently", e.ID.Short())
		}
	}
	return ""
}

// settleDamage decides which blobs are lost: those with no good copy.
func (c *checker) settleDamage(ctx context.Context) error {
	for blob, packs := range c.blobPacks {
		key := -1
		good := false
		for _, p := range packs {
			if k, bad := c.badPack[p]; bad {
				key = k
				continue
			}
			if k, bad := c.badBlob[p][blob]; bad {
				key = k
				continue
			}
			good = true
			break
		}
		if !good && key >= 0 {
			c.damaged[blob] = key
		}
	}
	return nil
}

func (c *checker) checkSnapshots(ctx context.Context) error {
	ids := c.snapIDs
	sort.Slice(ids, func(a, b int) bool { return bytes.Compare(ids[a][:], ids[b][:]) < 0 })
	for i, id := range ids {
		c.progress("snapshots", int64(i), int64(len(ids)))
		s, err := c.r.LoadSnapshot(ctx, id)
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue // forgotten meanwhile
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			k := c.problem(KindSnapshot, id.String(), "%v", err)
			c.errs[k].Snapshots = []string{id.String()}
			continue
		}
		c.res.Stats.Snapshots++
		keys, err := c.walkTree(ctx, s.Tree)
		if err != nil {
			return err
		}
		for _, k := range keys {
			c.errs[k].Snapshots = append(c.errs[k].Snapshots, id.String())
		}
	}
	return nil
}

// walkTree checks a tree and everything below it and returns the keys of
// the problems found there. Results are memoized: trees shared by many
// snapshots are read once.
func (c *checker) walkTree(ctx context.Context, id crypto.ID) ([]int, error) {
	if keys, ok := c.treeMemo[id]; ok {
		return keys, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.res.Stats.Trees++
	if c.res.Stats.Trees%64 == 0 {
		c.progress("trees", int64(c.res.Stats.Trees), 0)
	}
	var keys []int
	add := func(k int) {
		for _, have := range keys {
			if have == k {
				return
			}
		}
		keys = append(keys, k)
	}
	c.treeMemo[id] = nil // a cycle (impossible with content addressing) ends here
	switch t, ok := c.blobType[id]; {
	case !ok:
		add(c.problem(KindTree, id.String(), "not in any index"))
	case t != repo.TreeBlob:
		add(c.problem(KindTree, id.String(), "indexed as a %s blob", t))
	default:
		if k, bad := c.damaged[id]; bad {
			add(k)
			break
		}
		tree, err := c.r.LoadTree(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			add(c.problem(KindTree, id.String(), "cannot be read: %v", err))
			break
		}
		for _, n := range tree.Nodes {
			for _, b := range n.Content {
				if _, seen := c.seenData[b]; !seen {
					c.seenData[b] = struct{}{}
					c.res.Stats.DataBlobs++
				}
				if t, ok := c.blobType[b]; !ok {
					k, seen := c.missing[b]
					if !seen {
						k = c.problem(KindBlob, b.String(), "data of %q is not in any index", n.Name)
						c.missing[b] = k
					}
					add(k)
				} else if t != repo.DataBlob {
					add(c.problem(KindBlob, b.String(), "data of %q is indexed as a %s blob", n.Name, t))
				} else if k, bad := c.damaged[b]; bad {
					add(k)
				}
			}
			if n.Subtree != nil {
				sub, err := c.walkTree(ctx, *n.Subtree)
				if err != nil {
					return nil, err
				}
				for _, k := range sub {
					add(k)
				}
			}
		}
	}
	sort.Ints(keys)
	c.treeMemo[id] = keys
	return keys, nil
}
