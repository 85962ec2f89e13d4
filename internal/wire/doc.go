// Package wire defines cairn's storage protocol as it travels between
// nodes: protocol IDs, CBOR message types, length-prefixed frames, error
// codes, the ownership proof and the Merkle tree used by audits.
//
// Everything here is about bytes on the network. The host side
// (package hosting) and the owner side (package hostclient) convert these
// types to plain Go types at the edge and never pass them further in.
//
// # Compatibility
//
// Each operation has its own protocol ID ending in a version number
// (/cairn/store/put/1). A change that an old peer would misread gets a new
// version; fields may be added to a message within a version, and a decoder
// ignores fields it does not know. Field keys are small integers and are
// never reused. The exact messages are documented in docs/network.md.
//
// # Limits
//
// Every decoder is bounded: a frame is at most MaxFrameSize bytes, CBOR
// arrays, maps and nesting are capped, indefinite lengths and tags are
// refused, and each field is checked for length after decoding. Bodies of
// put and get travel after the header as raw bytes, never inside a frame.
package wire
