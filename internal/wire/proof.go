package wire

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProofDomain separates ownership proofs from every other signature made
// with the same keys.
const ProofDomain = "cairn store proof v1"

// ProofMessage is what an ownership proof signs: the host's nonce, the
// host's node ID, the requesting node's ID, the protocol, and the SHA-256
// of the request body, each length-prefixed. The nonce makes a proof good
// for one stream only; the two node IDs stop a host from passing a
// challenge on to another host; the body hash binds the proof to exactly
// one request.
func ProofMessage(nonce []byte, host, requester peer.ID, proto protocol.ID, body []byte) []byte {
	sum := sha256.Sum256(body)
	var b []byte
	for _, f := range [][]byte{nonce, []byte(host), []byte(requester), []byte(proto), sum[:]} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

// NodeSignedBytes is what a certified node signs with its libp2p key for a
// proof message: the domain, a zero byte, then the message (the same
// layout the owner key uses in crypto.Keys.Sign).
func NodeSignedBytes(msg []byte) []byte {
	b := make([]byte, 0, len(ProofDomain)+1+len(msg))
	b = append(b, ProofDomain...)
	b = append(b, 0)
	return append(b, msg...)
}
