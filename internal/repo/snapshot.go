package repo

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// Snapshot is a signed point-in-time root of a backup.
type Snapshot struct {
	Version  int        `json:"version"`
	Time     time.Time  `json:"time"`
	Host     string     `json:"host"`
	Username string     `json:"username,omitempty"`
	Paths    []string   `json:"paths"`
	Tags     []string   `json:"tags,omitempty"`
	Tree     crypto.ID  `json:"tree"`
	Parent   *crypto.ID `json:"parent,omitempty"`
	Summary  *Summary   `json:"summary,omitempty"`
	// OwnerPub and Sig: the owner's Ed25519 signature over the snapshot
	// encoded with Sig empty.
	OwnerPub ed25519.PublicKey `json:"owner_pub"`
	Sig      []byte            `json:"sig,omitempty"`

	// ID is the object ID; not stored.
	ID crypto.ID `json:"-"`
}

// Summary is what a backup recorded about itself.
type Summary struct {
	Files       int   `json:"files"`
	Dirs        int   `json:"dirs"`
	Links       int   `json:"links"`
	Others      int   `json:"others"`
	New         int   `json:"new"`
	Changed     int   `json:"changed"`
	Unchanged   int   `json:"unchanged"`
	Failed      int   `json:"failed"`
	Bytes       int64 `json:"bytes"`
	BytesAdded  int64 `json:"bytes_added"`
	StoredAdded int64 `json:"stored_added"`
	DurationMS  int64 `json:"duration_ms"`
}

const snapshotVersion = 1

var adSnapshot = []byte("cairn snapshot v1")

const snapshotSigDomain = "cairn snapshot v1"

func (s *Snapshot) signedBytes() ([]byte, error) {
	c := *s
	c.Sig = nil
	return json.Marshal(&c)
}

// SaveSnapshot signs, encrypts and stores a snapshot, setting its ID.
func (r *Repository) SaveSnapshot(ctx context.Context, s *Snapshot) (crypto.ID, error) {
	s.Version = snapshotVersion
	s.OwnerPub = r.keys.OwnerPublic()
	msg, err := s.signedBytes()
	if err != nil {
		return crypto.ID{}, err
	}
	s.Sig = r.keys.Sign(snapshotSigDomain, msg)
	js, err := json.Marshal(s)
	if err != nil {
		return crypto.ID{}, err
	}
	id, err := r.putObject(ctx, store.Snapshot, r.keys.Seal(nil, js, adSnapshot))
	if err != nil {
		return id, fmt.Errorf("save snapshot: %w", err)
	}
	s.ID = id
	return id, nil
}

// LoadSnapshot reads, decrypts and verifies one snapshot.
func (r *Repository) LoadSnapshot(ctx context.Context, id crypto.ID) (*Snapshot, error) {
	b, err := r.loadVerified(ctx, store.Handle{Type: store.Snapshot, Name: id.String()})
	if err != nil {
		return nil, err
	}
	pt, err := r.keys.Open(nil, b, adSnapshot)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id.Short(), ErrCorrupt)
	}
	var s Snapshot
	if err := json.Unmarshal(pt, &s); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w: %v", id.Short(), ErrCorrupt, err)
	}
	if s.Version != snapshotVersion {
		return nil, fmt.Errorf("snapshot %s: %w: version %d", id.Short(), ErrVersion, s.Version)
	}
	msg, err := s.signedBytes()
	if err != nil {
		return nil, err
	}
	if !s.OwnerPub.Equal(r.keys.OwnerPublic()) || !crypto.Verify(s.OwnerPub, snapshotSigDomain, msg, s.Sig) {
		return nil, fmt.Errorf("snapshot %s: %w: bad owner signature", id.Short(), ErrCorrupt)
	}
	s.ID = id
	return &s, nil
}

// SnapshotIDs lists the IDs of all snapshots.
func (r *Repository) SnapshotIDs(ctx context.Context) ([]crypto.ID, error) {
	var ids []crypto.ID
	err := r.st.List(ctx, store.Snapshot, func(i store.Info) error {
		id, err := crypto.ParseID(i.Handle.Name)
		if err != nil {
			return nil // not ours
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// Snapshots loads every snapshot, oldest first. A snapshot that cannot be
// read is reported in the returned error list but does not hide the others.
func (r *Repository) Snapshots(ctx context.Context) ([]*Snapshot, []error, error) {
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	out := make([]*Snapshot, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i], errs[i] = r.LoadSnapshot(ctx, id)
		}()
	}
	wg.Wait()
	var snaps []*Snapshot
	var bad []error
	for i := range ids {
		if errs[i] != nil {
			if errors.Is(errs[i], store.ErrNotFound) {
				continue // forgotten meanwhile
			}
			bad = append(bad, errs[i])
			continue
		}
		snaps = append(snaps, out[i])
	}
	sort.Slice(snaps, func(a, b int) bool {
		if snaps[a].Time.Equal(snaps[b].Time) {
			return snaps[a].ID.String() < snaps[b].ID.String()
		}
		return snaps[a].Time.Before(snaps[b].Time)
	})
	return snaps, bad, ctx.Err()
}

// FindSnapshot resolves "latest", a full ID or a unique prefix.
func (r *Repository) FindSnapshot(ctx context.Context, ref string) (*Snapshot, error) {
	if ref == "latest" {
		snaps, _, err := r.Snapshots(ctx)
		if err != nil {
			return nil, err
		}
		if len(snaps) == 0 {
			return nil, fmt.Errorf("%w: the repository has no snapshots", ErrNoSnapshot)
		}
		return snaps[len(snaps)-1], nil
	}
	ids, err := r.SnapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	var match []crypto.ID
	ref = strings.ToLower(ref)
	for _, id := range ids {
		if strings.HasPrefix(id.String(), ref) {
			match = append(match, id)
		}
	}
	switch {
	case ref == "" || len(match) == 0:
		return nil, fmt.Errorf("%w: %q", ErrNoSnapshot, ref)
	case len(match) > 1:
		return nil, fmt.Errorf("%w: %q matches %d snapshots", ErrAmbiguous, ref, len(match))
	}
	return r.LoadSnapshot(ctx, match[0])
}

// DeleteSnapshot removes a snapshot object. Callers hold the exclusive lock.
func (r *Repository) DeleteSnapshot(ctx context.Context, id crypto.ID) error {
	return r.st.Delete(ctx, store.Handle{Type: store.Snapshot, Name: id.String()})
}
