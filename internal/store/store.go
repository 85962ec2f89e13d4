// Package store defines where repository objects live.
//
// A Store keeps immutable objects addressed by a Type and a Name. The
// repository layer above it never learns whether objects sit in a local
// folder, in memory, or on peers' machines: every implementation honours
// the same contract, proven by the conformance suite in package storetest.
//
// The contract:
//   - Put is atomic: a reader sees either nothing or the whole object, never
//     a prefix, even if the process dies in the middle of Put.
//   - Put of a name that already exists replaces it atomically (callers only
//     do this for objects whose content is determined by their name, so the
//     replacement is byte-identical, or for lock files).
//   - Read after write: once Put returned, Get, Stat and List see the object.
//   - Get with a length of 0 reads from offset to the end.
//   - A missing object is reported with an error that wraps ErrNotFound.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
)

// Type is the kind of an object. It decides the folder or namespace the
// object lives in.
type Type string

// The object types of a repository.
const (
	Config   Type = "config"
	Key      Type = "keys"
	Pack     Type = "data"
	Index    Type = "index"
	Snapshot Type = "snapshots"
	Lock     Type = "locks"
	// Meta holds the owner's own records that must survive with the data,
	// such as the list of hosts: content-addressed and encrypted.
	Meta Type = "meta"
)

// Types lists every object type, in the order a full listing walks them.
var Types = []Type{Config, Key, Pack, Index, Snapshot, Lock, Meta}

// ConfigName is the name of the single config object.
const ConfigName = "config"

// ErrNotFound is wrapped by every error that reports a missing object.
var ErrNotFound = errors.New("object not found")

// ErrInvalidHandle is wrapped by errors about a malformed type or name.
var ErrInvalidHandle = errors.New("invalid object handle")

// Handle names one object.
type Handle struct {
	Type Type
	Name string
}

func (h Handle) String() string { return string(h.Type) + "/" + h.Name }

var nameRE = regexp.MustCompile(`^[0-9a-zA-Z_-]{1,128}$`)

// Valid reports whether h names an object a store may hold. Names are
// restricted to a safe alphabet so that no store ever builds a path or key
// from untrusted bytes that could escape its namespace.
func (h Handle) Valid() error {
	switch h.Type {
	case Config:
		if h.Name != ConfigName {
			return fmt.Errorf("%w: config object must be named %q", ErrInvalidHandle, ConfigName)
		}
		return nil
	case Key, Pack, Index, Snapshot, Lock, Meta:
	default:
		return fmt.Errorf("%w: unknown type %q", ErrInvalidHandle, h.Type)
	}
	if !nameRE.MatchString(h.Name) {
		return fmt.Errorf("%w: bad name %q", ErrInvalidHandle, h.Name)
	}
	return nil
}

// Info describes a stored object.
type Info struct {
	Handle Handle
	Size   int64
}

// Reader reads objects.
type Reader interface {
	// Get streams length bytes of the object from offset (all of the rest
	// when length is 0). The caller closes the reader.
	Get(ctx context.Context, h Handle, offset, length int64) (io.ReadCloser, error)
	// Stat returns the object's size.
	Stat(ctx context.Context, h Handle) (Info, error)
	// List calls fn for every object of type t, in no particular order.
	// An error from fn stops the listing and is returned.
	List(ctx context.Context, t Type, fn func(Info) error) error
}

// Writer writes and removes objects.
type Writer interface {
	// Put stores size bytes from r under h, atomically.
	Put(ctx context.Context, h Handle, r io.Reader, size int64) error
	// Delete removes the object. Deleting a missing object wraps ErrNotFound.
	Delete(ctx context.Context, h Handle) error
}

// Store is a place where objects live.
type Store interface {
	Reader
	Writer
	// Location describes the store for people ("local:/path", "peers").
	Location() string
	Close() error
}

// ReadAll reads a whole object into memory. Meant for small objects
// (config, keys, indexes, snapshots, pack headers).
func ReadAll(ctx context.Context, s Reader, h Handle) ([]byte, error) {
	rc, err := s.Get(ctx, h, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", h, err)
	}
	return b, nil
}

// ReadAt reads exactly length bytes at offset from an object.
func ReadAt(ctx context.Context, s Reader, h Handle, offset int64, length int) ([]byte, error) {
	if length <= 0 {
		return nil, fmt.Errorf("read %s: invalid length %d", h, length)
	}
	rc, err := s.Get(ctx, h, offset, int64(length))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf := make([]byte, length)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return nil, fmt.Errorf("read %s at %d+%d: %w", h, offset, length, err)
	}
	return buf, nil
}

// FilePutter is implemented by stores that can take a finished local file
// by moving it, saving a copy of every pack.
type FilePutter interface {
	// TempDir is a folder on the same file system as the store.
	TempDir() string
	// PutFile moves the synced file at path into place as h.
	PutFile(ctx context.Context, h Handle, path string) error
}
