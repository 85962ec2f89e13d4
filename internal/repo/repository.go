package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// Repository is an open repository: a store, the keys that open it, and
// the index in memory.
type Repository struct {
	st    store.Store
	keys  *crypto.Keys
	cfg   Config
	index *MasterIndex
	// indexFiles are the index objects loaded, by name.
	indexFiles map[string]bool
	// damagedIdx are index objects that failed to load.
	damagedIdx []string
	idxMu      sync.Mutex

	enc *zstd.Encoder
	dec *zstd.Decoder

	// KeyName is the key file that opened the repository ("" when opened
	// with the master key directly).
	KeyName string

	saver *saver
	now   func() time.Time
}

// Options tune how a repository is opened.
type Options struct {
	// Now replaces time.Now (tests).
	Now func() time.Time
	// KDF replaces crypto.DefaultKDF for new key files (tests use cheap ones).
	KDF *crypto.KDFParams
}

func (o Options) now() func() time.Time {
	if o.Now != nil {
		return o.Now
	}
	return time.Now
}

func (o Options) kdf() crypto.KDFParams {
	if o.KDF != nil {
		return *o.KDF
	}
	return crypto.DefaultKDF
}

func newRepository(st store.Store, keys *crypto.Keys, cfg Config, o Options) (*Repository, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		// The blob is authenticated already: the frame checksum would only
		// add four bytes to every blob.
		zstd.WithEncoderCRC(false),
		zstd.WithWindowSize(512<<10),
		zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(maxBlobRaw))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &Repository{
		st: st, keys: keys, cfg: cfg, index: NewMasterIndex(), indexFiles: map[string]bool{},
		enc: enc, dec: dec, now: o.now(),
	}, nil
}

// maxBlobRaw bounds a blob's plaintext: file chunks are at most a few MiB,
// trees of huge directories can be larger.
const maxBlobRaw = 256 << 20

// Init creates a repository in st, with a new master key wrapped under
// passphrase.
func Init(ctx context.Context, st store.Store, passphrase []byte, o Options) (*Repository, error) {
	master, err := crypto.NewMasterKey()
	if err != nil {
		return nil, err
	}
	return InitWithMaster(ctx, st, master, passphrase, o)
}

// InitWithMaster creates a repository for an existing master key (a second
// repository of the same owner, or tests).
func InitWithMaster(ctx context.Context, st store.Store, master crypto.MasterKey, passphrase []byte, o Options) (*Repository, error) {
	if _, err := loadConfigBytes(ctx, st); err == nil {
		return nil, ErrExists
	} else if !errors.Is(err, ErrNoRepository) {
		return nil, err
	}
	keys := crypto.Derive(master)
	cfg, err := newConfig(keys)
	if err != nil {
		return nil, err
	}
	r, err := newRepository(st, keys, cfg, o)
	if err != nil {
		return nil, err
	}
	name, err := r.AddKey(ctx, passphrase, o)
	if err != nil {
		return nil, err
	}
	r.KeyName = name
	b, err := encodeConfig(keys, cfg)
	if err != nil {
		return nil, err
	}
	// The config is written last: a repository exists once it is there.
	if err := st.Put(ctx, store.Handle{Type: store.Config, Name: store.ConfigName}, bytes.NewReader(b), int64(len(b))); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	return r, nil
}

// Open opens the repository in st with a passphrase, trying every key file.
func Open(ctx context.Context, st store.Store, passphrase []byte, o Options) (*Repository, error) {
	cb, err := loadConfigBytes(ctx, st)
	if err != nil {
		return nil, err
	}
	if v, _ := configVersion(cb); v != FormatVersion {
		return nil, fmt.Errorf("%w: repository is version %d, this cairn reads version %d", ErrVersion, v, FormatVersion)
	}
	var names []string
	err = st.List(ctx, store.Key, func(i store.Info) error {
		names = append(names, i.Handle.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no key files", ErrCorrupt)
	}
	for _, name := range names {
		kf, err := r0LoadKey(ctx, st, name)
		if err != nil {
			continue // a damaged key file must not lock the owner out
		}
		master, err := kf.Open(passphrase)
		// The KDF's 64 MiB are garbage now. Left to the collector, they
		// would set the heap's next target to twice that for the rest of
		// the run; give them back now.
		debug.FreeOSMemory()
		if err != nil {
			continue
		}
		r, err := OpenWithMaster(ctx, st, master, o)
		if err != nil {
			return nil, err
		}
		r.KeyName = name
		return r, nil
	}
	return nil, crypto.ErrWrongPassphrase
}

func r0LoadKey(ctx context.Context, st store.Reader, name string) (*crypto.KeyFile, error) {
	b, err := store.ReadAll(ctx, st, store.Handle{Type: store.Key, Name: name})
	if err != nil {
		return nil, err
	}
	return crypto.ParseKeyFile(b)
}

// OpenWithMaster opens the repository with the master key itself (from the
// recovery code).
func OpenWithMaster(ctx context.Context, st store.Store, master crypto.MasterKey, o Options) (*Repository, error) {
	cb, err := loadConfigBytes(ctx, st)
	if err != nil {
		return nil, err
	}
	keys := crypto.Derive(master)
	cfg, err := decodeConfig(keys, cb)
	if err != nil {
		if errors.Is(err, crypto.ErrAuth) {
			return nil, fmt.Errorf("%w: the key does not open this repository", crypto.ErrWrongPassphrase)
		}
		return nil, err
	}
	return newRepository(st, keys, cfg, o)
}

// Config returns the repository's configuration.
func (r *Repository) Config() Config { return r.cfg }

// Keys returns the repository's keys.
func (r *Repository) Keys() *crypto.Keys { return r.keys }

// Store returns the store the repository lives in.
func (r *Repository) Store() store.Store { return r.st }

// Index returns the in-memory index.
func (r *Repository) Index() *MasterIndex { return r.index }

// Now returns the repository's clock reading.
func (r *Repository) Now() time.Time { return r.now() }

// Close releases resources, the store's included. It does not flush: call
// Flush first.
func (r *Repository) Close() error {
	r.enc.Close()
	r.dec.Close()
	return r.st.Close()
}

// LoadIndex reads every index object not read before into memory.
func (r *Repository) LoadIndex(ctx context.Context) error {
	var names []string
	err := r.st.List(ctx, store.Index, func(i store.Info) error {
		r.idxMu.Lock()
		seen := r.indexFiles[i.Handle.Name]
		r.idxMu.Unlock()
		if !seen {
			names = append(names, i.Handle.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list indexes: %w", err)
	}
	type result struct {
		name string
		f    *IndexFile
		err  error
	}
	work := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range work {
				f, err := r.LoadIndexFile(ctx, name)
				results <- result{name, f, err}
			}
		}()
	}
	go func() {
		defer close(work)
		for _, n := range names {
			select {
			case work <- n:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var firstErr error
	for res := range results {
		if res.err != nil {
			if errors.Is(res.err, store.ErrNotFound) {
				continue // removed by a concurrent prune
			}
			if errors.Is(res.err, ErrCorrupt) {
				// One damaged index must not stop backups and restores:
				// its blobs are only not known (a backup stores them
				// again, check names the file).
				r.idxMu.Lock()
				r.damagedIdx = append(r.damagedIdx, res.name)
				r.idxMu.Unlock()
				continue
			}
			if firstErr == nil {
				firstErr = res.err
			}
			continue
		}
		for _, p := range res.f.Packs {
			r.index.AddPack(p)
		}
		r.idxMu.Lock()
		r.indexFiles[res.name] = true
		r.idxMu.Unlock()
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

// LoadIndexFile reads and decrypts one index object.
func (r *Repository) LoadIndexFile(ctx context.Context, name string) (*IndexFile, error) {
	b, err := r.loadVerified(ctx, store.Handle{Type: store.Index, Name: name})
	if err != nil {
		return nil, err
	}
	pt, err := r.keys.Open(nil, b, adIndex)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", short(name), ErrCorrupt)
	}
	f, err := DecodeIndexPlain(pt)
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", short(name), err)
	}
	return f, nil
}

// DamagedIndexes names the index objects LoadIndex skipped as damaged.
func (r *Repository) DamagedIndexes() []string {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	return append([]string{}, r.damagedIdx...)
}

// IndexNames returns the names of the index objects loaded so far.
func (r *Repository) IndexNames() []string {
	r.idxMu.Lock()
	defer r.idxMu.Unlock()
	out := make([]string, 0, len(r.indexFiles))
	for n := range r.indexFiles {
		out = append(out, n)
	}
	return out
}

// SaveIndexFile encrypts and stores an index file, returning its name.
func (r *Repository) SaveIndexFile(ctx context.Context, f *IndexFile) (string, error) {
	ct := r.keys.Seal(nil, EncodeIndexPlain(f), adIndex)
	id, err := r.putObject(ctx, store.Index, ct)
	if err != nil {
		return "", fmt.Errorf("save index: %w", err)
	}
	r.idxMu.Lock()
	r.indexFiles[id.String()] = true
	r.idxMu.Unlock()
	for _, p := range f.Packs {
		r.index.AddPack(p)
	}
	return id.String(), nil
}

// putObject stores a content-addressed object under the SHA-256 of its bytes.
func (r *Repository) putObject(ctx context.Context, t store.Type, b []byte) (crypto.ID, error) {
	id := crypto.Hash(b)
	if err := r.st.Put(ctx, store.Handle{Type: t, Name: id.String()}, bytes.NewReader(b), int64(len(b))); err != nil {
		return id, err
	}
	return id, nil
}

// loadVerified reads a content-addressed object and checks its hash.
func (r *Repository) loadVerified(ctx context.Context, h store.Handle) ([]byte, error) {
	b, err := store.ReadAll(ctx, r.st, h)
	if err != nil {
		return nil, err
	}
	if crypto.Hash(b).String() != h.Name {
		return nil, fmt.Errorf("%s %s: %w: content does not match its ID", h.Type, short(h.Name), ErrCorrupt)
	}
	return b, nil
}

func short(name string) string {
	if len(name) > 8 {
		return name[:8]
	}
	return name
}

// LoadBlob reads, checks, decrypts and decompresses one blob, appending the
// plaintext to buf.
func (r *Repository) LoadBlob(ctx context.Context, id crypto.ID, buf []byte) ([]byte, error) {
	pb, ok := r.index.Lookup(id)
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", id.Short(), ErrBlobNotFound)
	}
	ct, err := store.ReadAt(ctx, r.st, store.Handle{Type: store.Pack, Name: pb.Pack.String()}, int64(pb.Offset), int(pb.Length))
	if err != nil {
		return nil, fmt.Errorf("blob %s in pack %s: %w", id.Short(), pb.Pack.Short(), err)
	}
	return r.DecodeBlob(pb.BlobEntry, ct, buf)
}

// DecodeBlob authenticates, decrypts and decompresses a blob's ciphertext
// and checks that the plaintext hashes to its ID.
func (r *Repository) DecodeBlob(e BlobEntry, ct []byte, buf []byte) ([]byte, error) {
	pt, err := r.keys.Open(nil, ct, blobAD(e.Type, e.ID))
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", e.ID.Short(), ErrCorrupt)
	}
	out := pt
	if e.Compressed() {
		if e.RawLen > maxBlobRaw {
			return nil, fmt.Errorf("blob %s: %w: too large", e.ID.Short(), ErrCorrupt)
		}
		out, err = r.dec.DecodeAll(pt, buf[:0:0])
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w: decompress: %v", e.ID.Short(), ErrCorrupt, err)
		}
		out = append(buf, out...)
	} else {
		out = append(buf, pt...)
	}
	raw := out[len(buf):]
	if uint32(len(raw)) != e.RawLen || r.keys.BlobID(raw) != e.ID {
		return nil, fmt.Errorf("blob %s: %w: content does not match its ID", e.ID.Short(), ErrCorrupt)
	}
	return out, nil
}

// ReadPack reads a whole pack and checks its hash.
func (r *Repository) ReadPack(ctx context.Context, id crypto.ID) ([]byte, error) {
	return r.loadVerified(ctx, store.Handle{Type: store.Pack, Name: id.String()})
}

var _ io.Reader = (*bytes.Reader)(nil)

// tempDir returns where pack files are assembled: inside the store when it
// can take a finished file by rename, else the system's temp folder.
func (r *Repository) tempDir() string {
	if fp, ok := r.st.(store.FilePutter); ok {
		return fp.TempDir()
	}
	return os.TempDir()
}
