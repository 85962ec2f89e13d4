// Package placement puts an owner's repository on other people's nodes and
// keeps it there.
//
// It decides how a pack travels (whole copies, or Reed-Solomon shards),
// which hosts receive which piece, and what happens afterwards: leases are
// renewed, hosts are audited with Merkle proofs, lost or altered pieces are
// rebuilt onto other hosts, and forgotten packs are deleted everywhere. A
// placement record, kept in its own SQLite file, says which host holds
// which piece until when; it can be rebuilt from the hosts themselves, so a
// new machine with nothing but the owner's keys finds everything again.
//
// The package knows nothing about the network. A remote node is a Host, a
// small interface the caller implements over its transport; tests use
// in-memory fakes. Store exposes the hosts as a store.Store, so the
// repository can read (restore, recovery) and write (--no-local) through
// them without knowing they are remote.
//
// How placement, audits and repair decide is described for people in
// docs/redundancy.md; the shard format is documented in shard.go and there.
package placement
