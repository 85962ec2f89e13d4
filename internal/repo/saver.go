package repo

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"os"
	"sync"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// saver turns blobs into packs. Callers on many goroutines hand it blobs;
// each blob is compressed and encrypted on the caller's goroutine, appended
// to an idle packer of its type, and full packs are uploaded in the
// background with a bounded number in flight (back pressure keeps memory
// flat). Every uploaded pack is recorded in an index object soon after, so
// an interrupted backup leaves reusable data behind.
type saver struct {
	r *Repository

	mu       sync.Mutex
	pending  map[crypto.ID]struct{} // in an open packer or uploading
	idle     map[BlobType][]*packer
	open     int // packers created and not yet finished
	upSem    chan struct{}
	upWG     sync.WaitGroup
	upErr    error
	idxMu    sync.Mutex // serializes index writes
	unidx    []IndexPack
	written  []string // index objects written by this saver
	stats    SaveStats
	compBufs sync.Pool
}

// SaveStats counts what a saver stored.
type SaveStats struct {
	Blobs       int   // new blobs stored
	RawBytes    int64 // their plaintext size
	StoredBytes int64 // their size in packs
	Packs       int
}

type packer struct {
	typ     BlobType
	f       *os.File
	w       *bufio.Writer
	sha     hash.Hash
	size    int64
	entries []BlobEntry
}

const maxUploads = 2

func (r *Repository) getSaver() *saver {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	if r.saver == nil {
		r.saver = &saver{
			r: r, pending: map[crypto.ID]struct{}{}, idle: map[BlobType][]*packer{},
			upSem: make(chan struct{}, maxUploads),
		}
	}
	return r.saver
}

// SaveStats returns what has been stored since the repository was opened.
func (r *Repository) SaveStats() SaveStats {
	s := r.getSaver()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// HasBlob reports whether the repository has the blob or is storing it.
func (r *Repository) HasBlob(id crypto.ID) bool {
	if r.index.Has(id) {
		return true
	}
	s := r.getSaver()
	s.mu.Lock()
	_, ok := s.pending[id]
	s.mu.Unlock()
	return ok
}

// SaveBlob stores data as a blob of type t under id (which the caller
// computed with Keys().BlobID) unless the repository already has it. It
// reports whether the blob was new. data may be reused once it returns.
func (r *Repository) SaveBlob(ctx context.Context, t BlobType, id crypto.ID, data []byte) (bool, error) {
	if r.index.Has(id) {
		return false, nil
	}
	s := r.getSaver()
	s.mu.Lock()
	if s.upErr != nil {
		err := s.upErr
		s.mu.Unlock()
		return false, err
	}
	if _, ok := s.pending[id]; ok {
		s.mu.Unlock()
		return false, nil
	}
	s.pending[id] = struct{}{}
	s.mu.Unlock()

	ct, flags := s.encode(t, id, data)
	defer s.compBufs.Put(&ct)

	p, err := s.getPacker(t)
	if err != nil {
		s.forget(id)
		return false, err
	}
	if _, err := p.w.Write(ct); err != nil {
		s.forget(id)
		s.abandon(p)
		return false, fmt.Errorf("write pack: %w", err)
	}
	p.sha.Write(ct)
	p.entries = append(p.entries, BlobEntry{ID: id, Type: t, Flags: flags, Offset: uint32(p.size), Length: uint32(len(ct)), RawLen: uint32(len(data))})
	p.size += int64(len(ct))

	s.mu.Lock()
	s.stats.Blobs++
	s.stats.RawBytes += int64(len(data))
	s.stats.StoredBytes += int64(len(ct))
	s.mu.Unlock()

	if p.size >= int64(r.cfg.PackSize) {
		return true, s.finish(ctx, p)
	}
	s.putIdle(p)
	return true, nil
}

// encode compresses (when worth it) and encrypts a blob.
func (s *saver) encode(t BlobType, id crypto.ID, data []byte) ([]byte, uint8) {
	var flags uint8
	plain := data
	var buf []byte
	if b, ok := s.compBufs.Get().(*[]byte); ok {
		buf = (*b)[:0]
	}
	if worthCompressing(s.r, t, data) {
		c := s.r.enc.EncodeAll(data, buf)
		if len(c) < len(data) {
			plain = c
			flags = flagZstd
		}
		buf = c[:0]
	}
	need := len(plain) + crypto.Overhead
	out := make([]byte, 0, need)
	out = s.r.keys.Seal(out, plain, blobAD(t, id))
	if cap(buf) > 0 {
		s.compBufs.Put(&buf)
	}
	return out, flags
}

// worthCompressing guesses from a sample whether zstd will gain anything,
// so that random data (media, archives, encrypted files) costs no
// compression time.
func worthCompressing(r *Repository, t BlobType, data []byte) bool {
	if t == TreeBlob {
		return true
	}
	if len(data) < 256 {
		return false
	}
	const sample = 32 << 10
	if len(data) <= 2*sample {
		return true
	}
	mid := len(data)/2 - sample/2
	c := r.enc.EncodeAll(data[mid:mid+sample], nil)
	return len(c) < sample*15/16
}

func (s *saver) forget(id crypto.ID) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

func (s *saver) getPacker(t BlobType) (*packer, error) {
	s.mu.Lock()
	if l := s.idle[t]; len(l) > 0 {
		p := l[len(l)-1]
		s.idle[t] = l[:len(l)-1]
		s.mu.Unlock()
		return p, nil
	}
	s.open++
	s.mu.Unlock()
	f, err := os.CreateTemp(s.r.tempDir(), ".tmp-pack-*")
	if err != nil {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
		return nil, fmt.Errorf("create pack file: %w", err)
	}
	return &packer{typ: t, f: f, w: bufio.NewWriterSize(f, 256<<10), sha: sha256.New()}, nil
}

func (s *saver) putIdle(p *packer) {
	s.mu.Lock()
	s.idle[p.typ] = append(s.idle[p.typ], p)
	s.mu.Unlock()
}

func (s *saver) abandon(p *packer) {
	_ = p.f.Close()
	_ = os.Remove(p.f.Name())
	s.mu.Lock()
	s.open--
	for _, e := range p.entries {
		delete(s.pending, e.ID)
	}
	s.mu.Unlock()
}

// finish completes a pack and uploads it in the background.
func (s *saver) finish(ctx context.Context, p *packer) error {
	hdr := encodeHeader(s.r.keys, p.entries)
	if _, err := p.w.Write(hdr); err != nil {
		s.abandon(p)
		return fmt.Errorf("write pack: %w", err)
	}
	p.sha.Write(hdr)
	p.size += int64(len(hdr))
	if err := p.w.Flush(); err != nil {
		s.abandon(p)
		return fmt.Errorf("write pack: %w", err)
	}
	var id crypto.ID
	p.sha.Sum(id[:0])

	select {
	case s.upSem <- struct{}{}:
	case <-ctx.Done():
		s.abandon(p)
		return ctx.Err()
	}
	s.upWG.Add(1)
	go func() {
		defer s.upWG.Done()
		defer func() { <-s.upSem }()
		// The fsync happens here, off the caller's goroutine: a worker
		// goes on chunking while the disk catches up.
		err := p.f.Sync()
		if err != nil {
			s.abandon(p)
			err = fmt.Errorf("sync pack %s: %w", id.Short(), err)
		} else {
			err = s.upload(ctx, p, id)
		}
		if err == nil {
			err = s.writeIndex(ctx, false)
		}
		if err != nil {
			s.mu.Lock()
			if s.upErr == nil {
				s.upErr = err
			}
			s.mu.Unlock()
		}
	}()
	return nil
}

func (s *saver) upload(ctx context.Context, p *packer, id crypto.ID) error {
	h := store.Handle{Type: store.Pack, Name: id.String()}
	path := p.f.Name()
	var err error
	if fp, ok := s.r.st.(store.FilePutter); ok && fp.TempDir() == s.r.tempDir() {
		_ = p.f.Close()
		err = fp.PutFile(ctx, h, path)
	} else {
		if _, err = p.f.Seek(0, 0); err == nil {
			err = s.r.st.Put(ctx, h, p.f, p.size)
		}
		_ = p.f.Close()
	}
	_ = os.Remove(path) // gone already after a rename
	if err != nil {
		s.mu.Lock()
		s.open--
		for _, e := range p.entries {
			delete(s.pending, e.ID)
		}
		s.mu.Unlock()
		return fmt.Errorf("upload pack %s: %w", id.Short(), err)
	}
	ip := IndexPack{ID: id, Size: p.size, Blobs: p.entries}
	s.r.index.AddPack(ip)
	s.mu.Lock()
	s.open--
	for _, e := range p.entries {
		delete(s.pending, e.ID)
	}
	s.stats.Packs++
	s.unidx = append(s.unidx, ip)
	s.mu.Unlock()
	return nil
}

// writeIndex stores an index object for the packs uploaded but not yet
// indexed. With final set, the saver's partial indexes of this session are
// merged into one first.
func (s *saver) writeIndex(ctx context.Context, final bool) error {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	s.mu.Lock()
	packs := s.unidx
	s.unidx = nil
	s.mu.Unlock()
	if final && len(s.written) > 1 {
		// Merge: one index per backup keeps later opens fast.
		var merged IndexFile
		for _, name := range s.written {
			f, err := s.r.LoadIndexFile(ctx, name)
			if err != nil {
				return err
			}
			merged.Packs = append(merged.Packs, f.Packs...)
		}
		merged.Packs = append(merged.Packs, packs...)
		name, err := s.r.SaveIndexFile(ctx, &merged)
		if err != nil {
			s.requeue(packs)
			return err
		}
		for _, old := range s.written {
			if old == name {
				continue
			}
			if err := s.r.st.Delete(ctx, store.Handle{Type: store.Index, Name: old}); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("remove merged index: %w", err)
			}
			s.r.idxMu.Lock()
			delete(s.r.indexFiles, old)
			s.r.idxMu.Unlock()
		}
		s.written = []string{name}
		return nil
	}
	if len(packs) == 0 {
		return nil
	}
	name, err := s.r.SaveIndexFile(ctx, &IndexFile{Packs: packs})
	if err != nil {
		s.requeue(packs)
		return err
	}
	s.written = append(s.written, name)
	return nil
}

func (s *saver) requeue(packs []IndexPack) {
	s.mu.Lock()
	s.unidx = append(packs, s.unidx...)
	s.mu.Unlock()
}

// Flush finishes every open pack, waits for the uploads, and writes the
// index. Once it returns, every blob saved before is durable and indexed.
// Callers must not save blobs concurrently with Flush.
func (r *Repository) Flush(ctx context.Context) error {
	return r.flush(ctx, false)
}

// FlushFinal is Flush that also merges the indexes this session wrote.
func (r *Repository) FlushFinal(ctx context.Context) error {
	return r.flush(ctx, true)
}

func (r *Repository) flush(ctx context.Context, final bool) error {
	s := r.getSaver()
	s.mu.Lock()
	var ps []*packer
	for t, l := range s.idle {
		ps = append(ps, l...)
		s.idle[t] = nil
	}
	s.mu.Unlock()
	var firstErr error
	for _, p := range ps {
		if len(p.entries) == 0 {
			s.abandon(p)
			continue
		}
		if err := s.finish(ctx, p); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	s.upWG.Wait()
	s.mu.Lock()
	if firstErr == nil {
		firstErr = s.upErr
	}
	s.mu.Unlock()
	if firstErr != nil {
		return firstErr
	}
	return s.writeIndex(ctx, final)
}

// Abort drops every open pack without storing it (after an error).
func (r *Repository) Abort() {
	s := r.getSaver()
	s.mu.Lock()
	var ps []*packer
	for t, l := range s.idle {
		ps = append(ps, l...)
		s.idle[t] = nil
	}
	s.mu.Unlock()
	for _, p := range ps {
		s.abandon(p)
	}
	s.upWG.Wait()
	// What was uploaded is indexed or orphaned; the repository may be used
	// for another backup, which must not inherit this one's failure.
	s.mu.Lock()
	s.upErr = nil
	s.unidx = nil
	s.mu.Unlock()
}
