package placement

import (
	"context"
	"io"
	"time"

	"github.com/cairn-backup/cairn/internal/store"
)

// Trust levels of a host, as the peer table records them.
const (
	TrustFriend    = "friend"
	TrustCommunity = "community"
	TrustBlocked   = "blocked"
)

// Entry describes one object a host holds for the owner.
type Entry struct {
	Handle store.Handle
	Size   int64
	SHA256 [32]byte  // as the host verified it at put
	Until  time.Time // lease end
}

// LeafProof is a host's answer to one audit challenge: the bytes of leaf
// Index of the object's Merkle tree (see wire.MerkleRoot) and the sibling
// hashes from the leaf up to the root.
type LeafProof struct {
	Index uint64
	Data  []byte
	Path  [][]byte
}

// HostReader is what reading from a remote node needs.
type HostReader interface {
	// ID returns the host's node ID. It never changes.
	ID() string
	// Get streams length bytes of the object from offset (all of the rest
	// when length is 0). A missing object wraps store.ErrNotFound.
	Get(ctx context.Context, h store.Handle, offset, length int64) (io.ReadCloser, error)
	// List calls fn for every object of type t the host holds for the
	// owner (every type when t is ""), following pages as needed.
	List(ctx context.Context, t store.Type, fn func(Entry) error) error
}

// HostWriter is what placing objects on a remote node needs.
type HostWriter interface {
	// Put uploads size bytes from r whose SHA-256 is sum, to be kept until
	// until. The host verifies the hash before keeping anything. Putting
	// the same bytes again only extends the lease; an implementation that
	// learns the host already holds them returns nil without reading r
	// (placement counts bytes sent by what it reads from r).
	Put(ctx context.Context, h store.Handle, size int64, sum [32]byte, until time.Time, r io.Reader) error
	// Renew extends the leases of hs to until. Objects the host does not
	// hold are returned in missing (not an error).
	Renew(ctx context.Context, hs []store.Handle, until time.Time) (missing []store.Handle, err error)
	// Delete removes hs. Objects the host did not hold are not an error.
	Delete(ctx context.Context, hs []store.Handle) error
}

// HostAuditor answers proof-of-storage challenges.
type HostAuditor interface {
	// Audit asks the host for the given leaves of h (at most 16). The
	// caller checks the proofs against the Merkle root it recorded.
	Audit(ctx context.Context, h store.Handle, leaves []uint64) ([]LeafProof, error)
}

// Host is one remote node that keeps the owner's objects. The caller
// implements it over its transport (package hostclient over libp2p). All
// methods are safe for concurrent use.
type Host interface {
	HostReader
	HostWriter
	HostAuditor
}

// HostInfo is what the peer table knows about a host; it decides the
// ranking. Zero values mean "unknown" and rank neutrally.
type HostInfo struct {
	Trust        string        // TrustFriend, TrustCommunity or TrustBlocked ("" ranks as community)
	RTT          time.Duration // 0: unknown
	BandwidthBps float64       // bytes per second; 0: unknown
	FreeBytes    int64         // what the host would still accept; 0: unknown
	Online       bool          // reachable now
	MaxLease     time.Duration // longest lease the host grants (from its offer); 0: unknown
}

// Candidate is a host with what is known about it.
type Candidate struct {
	Host Host
	Info HostInfo
}

// ID returns the host's node ID.
func (c Candidate) ID() string { return c.Host.ID() }
