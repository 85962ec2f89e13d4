package wire

import "github.com/libp2p/go-libp2p/core/protocol"

// Protocol IDs, one per operation. Separate IDs let libp2p negotiate the
// operation (an old peer refuses an unknown one before any byte of ours is
// read), let the resource manager limit each operation on its own, and let
// each operation change version independently.
const (
	ProtoOffer  protocol.ID = "/cairn/store/offer/1"
	ProtoPut    protocol.ID = "/cairn/store/put/1"
	ProtoGet    protocol.ID = "/cairn/store/get/1"
	ProtoHas    protocol.ID = "/cairn/store/has/1"
	ProtoRenew  protocol.ID = "/cairn/store/renew/1"
	ProtoDelete protocol.ID = "/cairn/store/delete/1"
	ProtoAudit  protocol.ID = "/cairn/store/audit/1"
)

// Protocols lists every storage protocol.
var Protocols = []protocol.ID{ProtoOffer, ProtoPut, ProtoGet, ProtoHas, ProtoRenew, ProtoDelete, ProtoAudit}

// Limits of the protocol. A peer that exceeds one is cut off.
const (
	// MaxFrameSize is the largest frame (header or response) either side
	// reads. Bodies of put and get are not frames.
	MaxFrameSize = 256 << 10
	// NonceSize is the size of the host's challenge nonce.
	NonceSize = 32
	// MaxObjects is the most objects one has, renew or delete request
	// names, and the most entries one has response lists.
	MaxObjects = 1000
	// MaxAuditLeaves is the most leaves one audit may challenge.
	MaxAuditLeaves = 16
	// MaxCertSize is the largest node certificate accepted.
	MaxCertSize = 4096
	// MaxMessageLen is the longest free-text message in a response.
	MaxMessageLen = 512
	// MaxObjectSize is the largest object a host accepts in one put.
	MaxObjectSize = 1 << 36 // 64 GiB
)

// Challenge is the first frame on every stream, sent by the host: a fresh
// random nonce the requester must sign.
type Challenge struct {
	Nonce []byte `cbor:"1,keyasint"`
}

// Request is the requester's first frame. Body holds the CBOR encoding of
// the operation's request (OfferReq, PutReq, ...); the proof in Auth signs
// exactly those bytes, so nothing in the request can be changed without
// breaking the signature.
type Request struct {
	Auth Auth   `cbor:"1,keyasint"`
	Body []byte `cbor:"2,keyasint"`
}

// Auth is an ownership proof. With Cert empty, Sig is made by the owner key
// OwnerPub. With Cert set (a JSON crypto.NodeCert naming the requesting node,
// issued by OwnerPub), Sig is made by the requesting node's libp2p key.
// See ProofMessage for what is signed.
type Auth struct {
	OwnerPub []byte `cbor:"1,keyasint"`
	Cert     []byte `cbor:"2,keyasint,omitempty"`
	Sig      []byte `cbor:"3,keyasint"`
}

// Object names one object of the owner: a store type and a name that
// store.Handle.Valid accepts.
type Object struct {
	Type string `cbor:"1,keyasint"`
	Name string `cbor:"2,keyasint"`
}

// OfferReq asks "would you keep Bytes more bytes for me until Until?".
type OfferReq struct {
	Bytes int64 `cbor:"1,keyasint"`
	Until int64 `cbor:"2,keyasint"` // Unix seconds
}

// OfferResp answers an offer. Free is what the host would still accept from
// this requester now; MaxUntil is the longest lease it grants.
type OfferResp struct {
	Code     Code   `cbor:"1,keyasint"`
	Message  string `cbor:"2,keyasint,omitempty"`
	Free     int64  `cbor:"3,keyasint"`
	MaxUntil int64  `cbor:"4,keyasint"`
}

// PutReq announces an upload of Size bytes whose SHA-256 is Hash, to be
// kept until Until. The body follows only after a PutReady with CodeOK.
type PutReq struct {
	Object Object `cbor:"1,keyasint"`
	Size   int64  `cbor:"2,keyasint"`
	Hash   []byte `cbor:"3,keyasint"`
	Until  int64  `cbor:"4,keyasint"`
}

// PutResp is sent twice for a put: once after the request (CodeOK: send
// the body; Have: the host already holds these bytes, send nothing; any
// other code: refused) and, if the body was sent, once after it.
type PutResp struct {
	Code    Code   `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint,omitempty"`
	Have    bool   `cbor:"3,keyasint,omitempty"`
	Until   int64  `cbor:"4,keyasint,omitempty"`
}

// GetReq asks for Length bytes from Offset (all of the rest when Length is 0).
type GetReq struct {
	Object Object `cbor:"1,keyasint"`
	Offset int64  `cbor:"2,keyasint"`
	Length int64  `cbor:"3,keyasint"`
}

// GetResp precedes exactly Length bytes of body when Code is CodeOK.
type GetResp struct {
	Code    Code   `cbor:"1,keyasint"`
	Message string `cbor:"2,keyasint,omitempty"`
	Length  int64  `cbor:"3,keyasint"`
	Size    int64  `cbor:"4,keyasint"` // size of the whole object
	Hash    []byte `cbor:"5,keyasint"` // SHA-256 of the whole object, as verified at put
}

// HasReq asks which of Objects the host holds for the owner. With Objects
// empty it lists instead: objects of type ListType (all types when empty)
// with names after After, in name order, at most Limit of them.
type HasReq struct {
	Objects  []Object `cbor:"1,keyasint,omitempty"`
	ListType string   `cbor:"2,keyasint,omitempty"`
	After    Object   `cbor:"3,keyasint,omitempty"`
	Limit    int      `cbor:"4,keyasint,omitempty"`
}

// Entry describes one held object.
type Entry struct {
	Object Object `cbor:"1,keyasint"`
	Size   int64  `cbor:"2,keyasint"`
	Hash   []byte `cbor:"3,keyasint"`
	Until  int64  `cbor:"4,keyasint"`
}

// HasResp lists the held objects among those asked (missing ones are left
// out), or one page of a listing; More says another page follows.
type HasResp struct {
	Code    Code    `cbor:"1,keyasint"`
	Message string  `cbor:"2,keyasint,omitempty"`
	Entries []Entry `cbor:"3,keyasint,omitempty"`
	More    bool    `cbor:"4,keyasint,omitempty"`
}

// RenewReq extends the leases of Objects to Until (never shortens them).
type RenewReq struct {
	Objects []Object `cbor:"1,keyasint"`
	Until   int64    `cbor:"2,keyasint"`
}

// DeleteReq removes Objects.
type DeleteReq struct {
	Objects []Object `cbor:"1,keyasint"`
}

// ChangeResp answers renew and delete: Missing lists the objects the host
// did not hold.
type ChangeResp struct {
	Code    Code     `cbor:"1,keyasint"`
	Message string   `cbor:"2,keyasint,omitempty"`
	Missing []Object `cbor:"3,keyasint,omitempty"`
}

// AuditReq challenges the host to prove it holds the given leaves of an
// object (indexes into its Merkle tree, see MerkleRoot).
type AuditReq struct {
	Object Object   `cbor:"1,keyasint"`
	Leaves []uint64 `cbor:"2,keyasint"`
}

// AuditLeaf is one answered challenge: the leaf's bytes and the sibling
// hashes from the leaf up to the tree root.
type AuditLeaf struct {
	Index uint64   `cbor:"1,keyasint"`
	Data  []byte   `cbor:"2,keyasint"`
	Path  [][]byte `cbor:"3,keyasint"`
}

// AuditResp answers an audit with one AuditLeaf per challenged index.
type AuditResp struct {
	Code    Code        `cbor:"1,keyasint"`
	Message string      `cbor:"2,keyasint,omitempty"`
	Size    int64       `cbor:"3,keyasint"`
	Leaves  []AuditLeaf `cbor:"4,keyasint,omitempty"`
}
