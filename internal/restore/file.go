package restore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cairn-backup/cairn/internal/repo"
)

// Sizes that shape the work handed to the workers.
const (
	// largeFile: files above this are split into pieces written by
	// several workers at once.
	largeFile = 8 << 20
	// pieceBytes is the content of one piece of a large file.
	pieceBytes = 4 << 20
	// maxBatchFiles and maxBatchBytes bound a batch of small files.
	maxBatchFiles = 32
	maxBatchBytes = 8 << 20
)

// fileState is one file being written.
type fileState struct {
	path   string
	node   *repo.Node
	blobs  []repo.PackedBlob
	offs   []int64 // where each blob goes in the file
	size   int64
	parent *dirState
	link   *linkState // other paths wait to become hard links to this one
	action Action

	once    sync.Once
	tmp     string
	f       *os.File
	pending atomic.Int64 // pieces not yet written

	mu  sync.Mutex
	err error
}

func (f *fileState) setErr(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *fileState) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err != nil
}

// open creates the temporary file, once, sized so that skipped all-zero
// blobs become holes.
func (f *fileState) open() {
	f.once.Do(func() {
		fh, tmp, err := createTemp(filepath.Dir(f.path))
		if err != nil {
			f.setErr(err)
			return
		}
		if err := fh.Truncate(f.size); err != nil {
			fh.Close()
			os.Remove(tmp)
			f.setErr(fmt.Errorf("size temporary file: %w", err))
			return
		}
		f.f, f.tmp = fh, tmp
	})
}

// tempPath returns a fresh temporary name in dir.
func tempPath(dir string) string {
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return filepath.Join(dir, ".cairn-restore-"+hex.EncodeToString(b[:]))
}

func createTemp(dir string) (*os.File, string, error) {
	for range 10 {
		tmp := tempPath(dir)
		fh, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("create temporary file: %w", err)
		}
		return fh, tmp, nil
	}
	return nil, "", fmt.Errorf("create temporary file in %s: too many name collisions", dir)
}

// linkState is the first restored path of a hardlinked inode; the others
// wait until it is in place, then become links to it.
type linkState struct {
	path    string
	mu      sync.Mutex
	done    bool
	ok      bool // the content at path is the snapshot's
	waiters []*fileState
}

// lookup finds every blob of the file in the index.
func (rs *restorer) lookup(f *fileState) error {
	idx := rs.r.Index()
	f.blobs = make([]repo.PackedBlob, len(f.node.Content))
	f.offs = make([]int64, len(f.node.Content))
	var size int64
	for i, id := range f.node.Content {
		pb, ok := idx.Lookup(id)
		if !ok {
			return fmt.Errorf("blob %s: %w", id.Short(), repo.ErrBlobNotFound)
		}
		if pb.Type != repo.DataBlob {
			return fmt.Errorf("blob %s: %w: not a data blob", id.Short(), repo.ErrCorrupt)
		}
		f.blobs[i] = pb
		f.offs[i] = size
		size += int64(pb.RawLen)
	}
	f.size = size
	return nil
}

// planFile decides what to do with a regular file and hands its content
// to the workers.
func (rs *restorer) planFile(ctx context.Context, parent *dirState, n *repo.Node, p string) {
	var ls *linkState
	if n.Links > 1 {
		key := linkKey{n.DeviceID, n.Inode}
		if first := rs.links[key]; first != nil {
			rs.planLink(ctx, parent, n, p, first)
			return
		}
		ls = &linkState{path: p}
		rs.links[key] = ls
	}
	f := &fileState{path: p, node: n, parent: parent, link: ls}
	parent.pending.Add(1)
	rs.startFile(ctx, f, nil)
}

// startFile restores f's content, holding one reference on f.parent that
// it releases when done. With w set it runs on that worker at once (a
// worker must not wait on the job queue).
func (rs *restorer) startFile(ctx context.Context, f *fileState, w *worker) {
	done := func(ok bool) {
		rs.linkDone(ctx, f.link, ok, w)
		f.parent.release(rs)
	}
	if err := rs.lookup(f); err != nil {
		rs.fail(f.path, repo.NodeFile, err)
		done(false)
		return
	}
	action, err := rs.decideFile(f)
	switch action {
	case ActionFailed:
		rs.fail(f.path, repo.NodeFile, err)
		done(false)
		return
	case ActionSkipIdentical, ActionSkipNewer:
		rs.report(Entry{Path: f.path, Type: repo.NodeFile, Size: f.size, Action: action})
		done(action == ActionSkipIdentical)
		return
	}
	f.action = action
	if rs.opts.DryRun {
		rs.files.Add(1)
		rs.report(Entry{Path: f.path, Type: repo.NodeFile, Size: f.size, Action: action})
		done(true)
		return
	}
	if w != nil {
		f.pending.Store(1)
		w.process(ctx, job{{f: f, lo: 0, hi: len(f.blobs)}})
		return
	}
	rs.schedule(f)
}

// decideFile looks at what is at the file's path.
func (rs *restorer) decideFile(f *fileState) (Action, error) {
	fi, err := lstat(f.parent, f.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ActionCreate, nil
	case err != nil:
		return ActionFailed, err
	case fi.IsDir():
		return ActionFailed, errors.New("a folder is in the way")
	}
	if fi.Mode().IsRegular() && fi.Size() == f.size && rs.sameContent(f) {
		return ActionSkipIdentical, nil
	}
	if rs.newer(fi, f.node) {
		return ActionSkipNewer, nil
	}
	return ActionOverwrite, nil
}

// sameContent reports whether the file at f.path holds f's content.
func (rs *restorer) sameContent(f *fileState) bool {
	fh, err := os.Open(f.path)
	if err != nil {
		return false
	}
	defer fh.Close()
	var buf []byte
	return rs.checkContent(fh, f, &buf) == nil
}

// checkContent reads the file back blob by blob and compares each piece
// with its blob ID.
func (rs *restorer) checkContent(fh *os.File, f *fileState, buf *[]byte) error {
	keys := rs.r.Keys()
	for i, b := range f.blobs {
		n := int(b.RawLen)
		if cap(*buf) < n {
			*buf = make([]byte, n)
		}
		p := (*buf)[:n]
		if _, err := fh.ReadAt(p, f.offs[i]); err != nil {
			return fmt.Errorf("read back at offset %d: %w", f.offs[i], err)
		}
		if keys.BlobID(p) != b.ID {
			return fmt.Errorf("bytes at offset %d do not match blob %s", f.offs[i], b.ID.Short())
		}
	}
	return nil
}

// planLink makes p a hard link to the first restored path of its inode,
// once that one is in place.
func (rs *restorer) planLink(ctx context.Context, parent *dirState, n *repo.Node, p string, ls *linkState) {
	if rs.opts.DryRun {
		action := ActionCreate
		fi, err := lstat(parent, p)
		switch {
		case err == nil && fi.IsDir():
			rs.fail(p, repo.NodeFile, errors.New("a folder is in the way"))
			return
		case err == nil && rs.newer(fi, n):
			action = ActionSkipNewer
		case err == nil:
			action = ActionOverwrite
		case !errors.Is(err, fs.ErrNotExist):
			rs.fail(p, repo.NodeFile, err)
			return
		}
		rs.report(Entry{Path: p, Type: repo.NodeFile, Size: int64(n.Size), Link: ls.path, Action: action})
		return
	}
	f := &fileState{path: p, node: n, parent: parent}
	parent.pending.Add(1)
	ls.mu.Lock()
	if !ls.done {
		ls.waiters = append(ls.waiters, f)
		ls.mu.Unlock()
		return
	}
	ok := ls.ok
	ls.mu.Unlock()
	rs.resolveLink(ctx, f, ls.path, ok, nil)
}

// linkDone records that the first path of an inode is finished and serves
// the paths waiting for it.
func (rs *restorer) linkDone(ctx context.Context, ls *linkState, ok bool, w *worker) {
	if ls == nil {
		return
	}
	ls.mu.Lock()
	ls.done, ls.ok = true, ok
	ws := ls.waiters
	ls.waiters = nil
	ls.mu.Unlock()
	for _, f := range ws {
		rs.resolveLink(ctx, f, ls.path, ok, w)
	}
}

// resolveLink links f to target when target holds the snapshot's content,
// and restores f's content on its own otherwise.
func (rs *restorer) resolveLink(ctx context.Context, f *fileState, target string, ok bool, w *worker) {
	if !ok {
		rs.startFile(ctx, f, w)
		return
	}
	defer f.parent.release(rs)
	p := f.path
	action := ActionCreate
	fi, err := os.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		rs.fail(p, repo.NodeFile, errors.New("a folder is in the way"))
		return
	case err == nil:
		if tfi, err := os.Lstat(target); err == nil && os.SameFile(fi, tfi) {
			rs.report(Entry{Path: p, Type: repo.NodeFile, Size: int64(f.node.Size), Link: target, Action: ActionSkipIdentical})
			return
		}
		if rs.newer(fi, f.node) {
			rs.report(Entry{Path: p, Type: repo.NodeFile, Size: int64(f.node.Size), Link: target, Action: ActionSkipNewer})
			return
		}
		action = ActionOverwrite
	case !errors.Is(err, fs.ErrNotExist):
		rs.fail(p, repo.NodeFile, err)
		return
	}
	tmp := tempPath(filepath.Dir(p))
	if err := os.Link(target, tmp); err != nil {
		rs.fail(p, repo.NodeFile, fmt.Errorf("hard link: %w", err))
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		rs.fail(p, repo.NodeFile, fmt.Errorf("rename into place: %w", err))
		return
	}
	rs.report(Entry{Path: p, Type: repo.NodeFile, Size: int64(f.node.Size), Link: target, Action: action})
}

// schedule queues a file's content for the workers: a small file joins
// the current batch, a large one is cut into pieces.
func (rs *restorer) schedule(f *fileState) {
	if f.size > largeFile && len(f.blobs) > 1 {
		var pieces []piece
		lo, acc := 0, int64(0)
		for i, b := range f.blobs {
			acc += int64(b.RawLen)
			if acc >= pieceBytes || i == len(f.blobs)-1 {
				pieces = append(pieces, piece{f: f, lo: lo, hi: i + 1})
				lo, acc = i+1, 0
			}
		}
		f.pending.Store(int64(len(pieces)))
		for _, pc := range pieces {
			rs.jobs <- job{pc}
		}
		return
	}
	f.pending.Store(1)
	rs.batch = append(rs.batch, piece{f: f, lo: 0, hi: len(f.blobs)})
	rs.batchBytes += f.size
	if len(rs.batch) >= maxBatchFiles || rs.batchBytes >= maxBatchBytes {
		rs.flushBatch()
	}
}

// flushBatch hands the current batch of small files to the workers.
func (rs *restorer) flushBatch() {
	if len(rs.batch) == 0 {
		return
	}
	rs.jobs <- rs.batch
	rs.batch, rs.batchBytes = nil, 0
}

// finishFile syncs a written file, checks it when asked, sets its
// metadata and renames it into place; or removes it after an error.
func (rs *restorer) finishFile(ctx context.Context, f *fileState, w *worker) {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err == nil {
		err = ctx.Err()
	}
	var metaErr error
	if f.f != nil {
		if err == nil && rs.opts.Verify {
			if e := rs.checkContent(f.f, f, &w.vbuf); e != nil {
				err = fmt.Errorf("verify: %w", e)
			}
		}
		if err == nil {
			if e := f.f.Sync(); e != nil {
				err = fmt.Errorf("sync: %w", e)
			}
		}
		if e := f.f.Close(); e != nil && err == nil {
			err = fmt.Errorf("close: %w", e)
		}
		if err == nil {
			metaErr = rs.applyMeta(f.tmp, f.node)
			if e := os.Rename(f.tmp, f.path); e != nil {
				err = fmt.Errorf("rename into place: %w", e)
			}
		}
		if err != nil {
			os.Remove(f.tmp)
		}
	}
	switch {
	case err != nil:
		rs.fail(f.path, repo.NodeFile, err)
	case metaErr != nil:
		rs.fail(f.path, repo.NodeFile, metaErr)
	default:
		rs.files.Add(1)
		rs.report(Entry{Path: f.path, Type: repo.NodeFile, Size: f.size, Action: f.action})
	}
	rs.linkDone(ctx, f.link, err == nil, w)
	f.parent.release(rs)
}
