// Package repo is cairn's encrypted, deduplicated object repository.
//
// A repository lives in a store.Store. It holds a config object, key files
// that wrap the master key under passphrases, packs of encrypted blobs,
// indexes that say which blob lives where, and signed snapshots. Trees (one
// per directory) and file content are blobs. The exact bytes are documented
// in docs/format.md; this package is the only code that reads or writes
// them.
//
// Concurrency: any number of processes may add packs, indexes and
// snapshots at once under shared locks. Deleting anything (forget, prune)
// takes the exclusive lock. Objects are immutable and content-addressed, so
// a crash at any point leaves at worst unreferenced objects, never a
// damaged one.
package repo
