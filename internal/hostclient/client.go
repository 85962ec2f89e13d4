// Package hostclient is the owner side of cairn's storage protocol: it asks
// other nodes to keep the owner's objects, fetches them back, renews,
// deletes and audits them (DESIGN §7, docs/network.md).
//
// A Client speaks for one owner, through a Signer: the owner's own key, or
// this node's libp2p key with a certificate the owner issued for the node.
// It verifies what hosts send back: full reads against the object's hash,
// audits against the Merkle root the owner recorded at upload.
// The peer store wraps a Client into a store.Store.
package hostclient

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/wire"
	lcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Signer makes ownership proofs for one owner.
type Signer struct {
	ownerPub ed25519.PublicKey
	keys     *crypto.Keys    // owner mode
	node     lcrypto.PrivKey // node mode
	cert     []byte          // node mode: JSON NodeCert
}

// OwnerSigner proves ownership with the owner key itself (for example on a
// recovering node that has the recovery code but no certificate yet).
func OwnerSigner(k *crypto.Keys) *Signer {
	return &Signer{ownerPub: k.OwnerPublic(), keys: k}
}

// NodeSigner proves ownership with this node's libp2p key and the owner's
// certificate for the node. The host checks that the certificate names the
// node that opened the stream.
func NodeSigner(nodeKey lcrypto.PrivKey, cert *crypto.NodeCert) (*Signer, error) {
	b, err := crypto.MarshalNodeCert(cert)
	if err != nil {
		return nil, fmt.Errorf("node signer: %w", err)
	}
	if len(b) > wire.MaxCertSize {
		return nil, fmt.Errorf("node signer: certificate of %d bytes is too large", len(b))
	}
	return &Signer{ownerPub: cert.OwnerPub, node: nodeKey, cert: b}, nil
}

// OwnerID is the owner the signer speaks for.
func (s *Signer) OwnerID() string { return crypto.OwnerID(s.ownerPub) }

func (s *Signer) auth(msg []byte) (wire.Auth, error) {
	a := wire.Auth{OwnerPub: s.ownerPub, Cert: s.cert}
	if s.keys != nil {
		a.Sig = s.keys.Sign(wire.ProofDomain, msg)
		return a, nil
	}
	sig, err := s.node.Sign(wire.NodeSignedBytes(msg))
	if err != nil {
		return a, fmt.Errorf("sign ownership proof: %w", err)
	}
	a.Sig = sig
	return a, nil
}

// Options tune a Client. Zero fields take defaults.
type Options struct {
	// HeaderTimeout bounds each exchange of frames (default 20 s).
	HeaderTimeout time.Duration
	// MinRate is the slowest a body may move, in bytes per second, before
	// the request is abandoned (default 64 KiB/s).
	MinRate int64
}

// Client talks to hosts for one owner. It is safe for concurrent use.
type Client struct {
	h     host.Host
	sig   *Signer
	codec *wire.Codec
	opts  Options
}

// New returns a client that opens streams from h and proves ownership
// with s.
func New(h host.Host, s *Signer, opts Options) *Client {
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 20 * time.Second
	}
	if opts.MinRate <= 0 {
		opts.MinRate = 64 << 10
	}
	return &Client{h: h, sig: s, codec: wire.NewCodec(), opts: opts}
}

// OwnerID is the owner the client speaks for.
func (c *Client) OwnerID() string { return c.sig.OwnerID() }

func (c *Client) bodyTimeout(n int64) time.Duration {
	return c.opts.HeaderTimeout + time.Duration(n/c.opts.MinRate)*time.Second
}

// stream is one request in flight.
type stream struct {
	network.Stream
	stop func() bool // detaches the context
}

// close ends a stream that completed; reset abandons one that did not.
func (s *stream) close() { s.stop(); s.Stream.Close() }
func (s *stream) reset() { s.stop(); s.Stream.Reset() }

// open opens a stream for proto, answers the host's challenge and sends
// body as a signed request. The stream is reset if ctx ends.
func (c *Client) open(ctx context.Context, p peer.ID, proto protocol.ID, body wire.Message) (*stream, error) {
	b, err := c.codec.Marshal(body)
	if err != nil {
		return nil, err
	}
	ns, err := c.h.NewStream(ctx, p, proto)
	if err != nil {
		return nil, fmt.Errorf("open %s to %s: %w", proto, p, err)
	}
	st := &stream{Stream: ns, stop: context.AfterFunc(ctx, func() { ns.Reset() })}
	deadline := time.Now().Add(c.opts.HeaderTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := ns.SetDeadline(deadline); err != nil {
		st.reset()
		return nil, fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	var ch wire.Challenge
	if err := c.codec.ReadMsg(ns, &ch); err != nil {
		st.reset()
		return nil, c.streamErr(ctx, proto, p, "read challenge", err)
	}
	a, err := c.sig.auth(wire.ProofMessage(ch.Nonce, p, c.h.ID(), proto, b))
	if err != nil {
		st.reset()
		return nil, err
	}
	if err := c.codec.WriteMsg(ns, &wire.Request{Auth: a, Body: b}); err != nil {
		st.reset()
		return nil, c.streamErr(ctx, proto, p, "send request", err)
	}
	return st, nil
}

func (c *Client) streamErr(ctx context.Context, proto protocol.ID, p peer.ID, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s to %s: %s: %w", proto, p, what, ctx.Err())
	}
	return fmt.Errorf("%s to %s: %s: %w", proto, p, what, err)
}

// roundTrip sends one request and reads one response.
func (c *Client) roundTrip(ctx context.Context, p peer.ID, proto protocol.ID, req, resp wire.Message) error {
	st, err := c.open(ctx, p, proto, req)
	if err != nil {
		return err
	}
	if err := c.codec.ReadMsg(st, resp); err != nil {
		st.reset()
		return c.streamErr(ctx, proto, p, "read response", err)
	}
	st.close()
	return nil
}

// refused wraps a host's refusal with what was asked.
func refused(proto protocol.ID, p peer.ID, code wire.Code, msg string) error {
	if err := code.Err(msg); err != nil {
		return fmt.Errorf("%s to %s: %w", proto, p, err)
	}
	return nil
}

// errBadResponse is wrapped when a host answers something that cannot be
// right (a hash that does not match, a proof that does not verify).
var errBadResponse = errors.New("host sent a bad response")
