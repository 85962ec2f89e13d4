package restore

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
)

// Reading blobs: neighbours in one pack are read with one ranged read when
// the gap between them is small and the whole read stays bounded.
const (
	maxGap = 256 << 10
	maxRun = 8 << 20
)

// piece is the blobs lo..hi-1 of one file.
type piece struct {
	f      *fileState
	lo, hi int
}

// job is what a worker takes at once: a batch of small files or one piece
// of a large file.
type job []piece

type worker struct {
	rs *restorer
	// finisher: this goroutine finishes files itself (syncs, renames)
	// rather than handing them to the finishers.
	finisher bool
	buf      []byte // ciphertext of one run
	plain    []byte // plaintext of one blob
	vbuf     []byte // for reading back
}

// need is one blob a job needs and the places it goes.
type need struct {
	pb      repo.PackedBlob
	targets []target
}

type target struct {
	f   *fileState
	off int64
}

// process writes the content of a job, then finishes the files whose last
// piece this was.
func (w *worker) process(ctx context.Context, j job) {
	rs := w.rs
	needs := map[crypto.ID]*need{}
	for _, pc := range j {
		f := pc.f
		if err := ctx.Err(); err != nil {
			f.setErr(err)
			continue
		}
		f.open()
		if f.failed() {
			continue
		}
		for i := pc.lo; i < pc.hi; i++ {
			b := f.blobs[i]
			if _, zero := rs.zeros.Load(b.ID); zero {
				continue // a hole: the file was sized already
			}
			nd := needs[b.ID]
			if nd == nil {
				nd = &need{pb: b}
				needs[b.ID] = nd
			}
			nd.targets = append(nd.targets, target{f, f.offs[i]})
		}
	}
	list := make([]*need, 0, len(needs))
	for _, nd := range needs {
		list = append(list, nd)
	}
	slices.SortFunc(list, func(a, b *need) int {
		if c := bytes.Compare(a.pb.Pack[:], b.pb.Pack[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.pb.Offset, b.pb.Offset)
	})
	for len(list) > 0 {
		n := runLen(list)
		w.readRun(ctx, list[:n])
		list = list[n:]
	}
	for _, pc := range j {
		var b int64
		for i := pc.lo; i < pc.hi; i++ {
			b += int64(pc.f.blobs[i].RawLen)
		}
		rs.bytes.Add(b)
		if pc.f.pending.Add(-1) == 0 {
			if w.finisher {
				rs.finishFile(ctx, pc.f, w)
			} else {
				rs.finish <- pc.f
			}
		}
	}
}

// runLen returns how many of the sorted needs one read covers.
func runLen(list []*need) int {
	first := list[0].pb
	start := int64(first.Offset)
	end := start + int64(first.Length)
	n := 1
	for ; n < len(list); n++ {
		b := list[n].pb
		off := int64(b.Offset)
		if b.Pack != first.Pack || off < end || off-end > maxGap || off+int64(b.Length)-start > maxRun {
			break
		}
		end = off + int64(b.Length)
	}
	return n
}

// alive reports whether any target of the needs still wants data.
func alive(run []*need) bool {
	for _, nd := range run {
		for _, t := range nd.targets {
			if !t.f.failed() {
				return true
			}
		}
	}
	return false
}

func failTargets(nd *need, err error) {
	for _, t := range nd.targets {
		t.f.setErr(err)
	}
}

// readRun reads neighbouring blobs of one pack at once, decrypts and
// checks each, and writes it wherever it goes.
func (w *worker) readRun(ctx context.Context, run []*need) {
	if !alive(run) {
		return
	}
	rs := w.rs
	first, last := run[0].pb, run[len(run)-1].pb
	start := int64(first.Offset)
	length := int64(last.Offset) + int64(last.Length) - start
	if int64(cap(w.buf)) < length {
		w.buf = make([]byte, length)
	}
	buf := w.buf[:length]
	if err := readRange(ctx, rs.r.Store(), first.Pack, start, buf); err != nil {
		for _, nd := range run {
			failTargets(nd, fmt.Errorf("blob %s: %w", nd.pb.ID.Short(), err))
		}
		return
	}
	for _, nd := range run {
		off := int64(nd.pb.Offset) - start
		pt, err := rs.r.DecodeBlob(nd.pb.BlobEntry, buf[off:off+int64(nd.pb.Length)], w.plain[:0])
		if err != nil {
			failTargets(nd, fmt.Errorf("pack %s: %w", nd.pb.Pack.Short(), err))
			continue
		}
		w.plain = pt[:0]
		if allZero(pt) {
			rs.zeros.Store(nd.pb.ID, struct{}{})
			continue
		}
		for _, t := range nd.targets {
			if t.f.failed() {
				continue
			}
			if _, err := t.f.f.WriteAt(pt, t.off); err != nil {
				t.f.setErr(fmt.Errorf("write: %w", err))
			}
		}
	}
}

func readRange(ctx context.Context, st store.Reader, pack crypto.ID, off int64, buf []byte) error {
	h := store.Handle{Type: store.Pack, Name: pack.String()}
	rc, err := st.Get(ctx, h, off, int64(len(buf)))
	if err != nil {
		return fmt.Errorf("read pack %s: %w", pack.Short(), err)
	}
	defer rc.Close()
	if _, err := io.ReadFull(rc, buf); err != nil {
		return fmt.Errorf("read pack %s at %d+%d: %w", pack.Short(), off, len(buf), err)
	}
	return nil
}

var zeroPage [64 << 10]byte

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroPage))
		if !bytes.Equal(b[:n], zeroPage[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
