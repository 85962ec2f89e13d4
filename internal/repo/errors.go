package repo

import "errors"

// Errors callers can test for with errors.Is.
var (
	// ErrNoRepository: the store holds no cairn repository.
	ErrNoRepository = errors.New("no repository at this location")
	// ErrExists: init found a repository already there.
	ErrExists = errors.New("a repository already exists at this location")
	// ErrVersion: the repository was written by a newer cairn.
	ErrVersion = errors.New("unsupported repository format version")
	// ErrLocked: another process holds a conflicting lock.
	ErrLocked = errors.New("repository is locked")
	// ErrCorrupt: an object failed authentication or does not parse.
	ErrCorrupt = errors.New("repository object is damaged")
	// ErrBlobNotFound: no index knows the blob.
	ErrBlobNotFound = errors.New("blob not found in index")
	// ErrNoSnapshot: no snapshot matches the given ID or prefix.
	ErrNoSnapshot = errors.New("no matching snapshot")
	// ErrAmbiguous: a snapshot ID prefix matches several snapshots.
	ErrAmbiguous = errors.New("snapshot ID prefix is ambiguous")
)
