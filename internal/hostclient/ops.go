package hostclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
	"github.com/libp2p/go-libp2p/core/peer"
)

// OfferResult is a host's answer to an accepted offer.
type OfferResult struct {
	Free     int64     // bytes the host would still accept from this node now
	MaxUntil time.Time // the longest lease it grants
}

// Offer asks p whether it would keep bytes more bytes for the owner until
// until. A refusal is an error wrapping wire.ErrNotTrusted, wire.ErrQuota,
// wire.ErrDiskFull or wire.ErrLeaseTooLong; the result still carries what
// the host would accept. An accepted offer reserves nothing: a later put
// is checked again.
func (c *Client) Offer(ctx context.Context, p peer.ID, bytes int64, until time.Time) (OfferResult, error) {
	var resp wire.OfferResp
	if err := c.roundTrip(ctx, p, wire.ProtoOffer, &wire.OfferReq{Bytes: bytes, Until: until.Unix()}, &resp); err != nil {
		return OfferResult{}, err
	}
	res := OfferResult{Free: resp.Free, MaxUntil: time.Unix(resp.MaxUntil, 0)}
	return res, refused(wire.ProtoOffer, p, resp.Code, resp.Message)
}

// Object describes an object to upload.
type Object struct {
	Handle store.Handle
	Size   int64
	// Hash is the SHA-256 of the bytes. It may stay zero for
	// content-addressed names (see wire.ContentID); config, locks and
	// shards must set it.
	Hash  crypto.ID
	Until time.Time // end of the lease asked for
}

// PutResult reports an upload.
type PutResult struct {
	Sent  bool      // false: the host already held these bytes and only extended the lease
	Until time.Time // lease end the host granted
}

func (o *Object) hash() (crypto.ID, error) {
	id, ok := wire.ContentID(o.Handle)
	switch {
	case o.Hash.IsZero() && !ok:
		return id, fmt.Errorf("put %s: %w: name is not a hash, Object.Hash must be set", o.Handle, wire.ErrBadRequest)
	case o.Hash.IsZero():
		return id, nil
	case ok && id != o.Hash:
		return id, fmt.Errorf("put %s: %w: hash differs from the name", o.Handle, wire.ErrHashMismatch)
	}
	return o.Hash, nil
}

// Put uploads o.Size bytes from r to p. The host checks the hash before it
// commits; if it already holds the same bytes, nothing is sent and the
// lease is extended. r must yield at least o.Size bytes.
func (c *Client) Put(ctx context.Context, p peer.ID, o Object, r io.Reader) (PutResult, error) {
	if err := o.Handle.Valid(); err != nil {
		return PutResult{}, fmt.Errorf("put: %w", err)
	}
	sum, err := o.hash()
	if err != nil {
		return PutResult{}, err
	}
	proto := wire.ProtoPut
	st, err := c.open(ctx, p, proto, &wire.PutReq{Object: wire.ObjectOf(o.Handle), Size: o.Size, Hash: sum[:], Until: o.Until.Unix()})
	if err != nil {
		return PutResult{}, err
	}
	var ready wire.PutResp
	if err := c.codec.ReadMsg(st, &ready); err != nil {
		st.reset()
		return PutResult{}, c.streamErr(ctx, proto, p, "read answer", err)
	}
	if err := refused(proto, p, ready.Code, ready.Message); err != nil {
		st.close()
		return PutResult{}, fmt.Errorf("put %s: %w", o.Handle, err)
	}
	if ready.Have {
		st.close()
		return PutResult{Until: time.Unix(ready.Until, 0)}, nil
	}
	if err := st.SetDeadline(time.Now().Add(c.bodyTimeout(o.Size))); err != nil {
		st.reset()
		return PutResult{}, fmt.Errorf("put %s: %w", o.Handle, err)
	}
	if _, err := io.CopyN(st, r, o.Size); err != nil {
		st.reset()
		return PutResult{}, c.streamErr(ctx, proto, p, "send "+o.Handle.String(), err)
	}
	if err := st.CloseWrite(); err != nil {
		st.reset()
		return PutResult{}, c.streamErr(ctx, proto, p, "send "+o.Handle.String(), err)
	}
	var done wire.PutResp
	if err := c.codec.ReadMsg(st, &done); err != nil {
		st.reset()
		return PutResult{}, c.streamErr(ctx, proto, p, "read result", err)
	}
	st.close()
	if err := refused(proto, p, done.Code, done.Message); err != nil {
		return PutResult{}, fmt.Errorf("put %s: %w", o.Handle, err)
	}
	return PutResult{Sent: true, Until: time.Unix(done.Until, 0)}, nil
}

// Get streams length bytes of h from offset (all of the rest when length
// is 0) from p. A read of the whole object is verified: against the name
// for content-addressed objects, otherwise against the hash the host
// checked at upload (use GetChecked when the caller knows the hash). A
// mismatch, or a body shorter than announced, is an error from Read, never
// a silent EOF. A missing object wraps store.ErrNotFound.
func (c *Client) Get(ctx context.Context, p peer.ID, h store.Handle, offset, length int64) (io.ReadCloser, error) {
	want, _ := wire.ContentID(h)
	return c.get(ctx, p, h, offset, length, want)
}

// GetChecked streams the whole of h from p, verified against want.
func (c *Client) GetChecked(ctx context.Context, p peer.ID, h store.Handle, want crypto.ID) (io.ReadCloser, error) {
	return c.get(ctx, p, h, 0, 0, want)
}

func (c *Client) get(ctx context.Context, p peer.ID, h store.Handle, offset, length int64, want crypto.ID) (io.ReadCloser, error) {
	if err := h.Valid(); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("get %s: %w: negative offset or length", h, wire.ErrBadRequest)
	}
	proto := wire.ProtoGet
	st, err := c.open(ctx, p, proto, &wire.GetReq{Object: wire.ObjectOf(h), Offset: offset, Length: length})
	if err != nil {
		return nil, err
	}
	var resp wire.GetResp
	if err := c.codec.ReadMsg(st, &resp); err != nil {
		st.reset()
		return nil, c.streamErr(ctx, proto, p, "read answer", err)
	}
	if err := refused(proto, p, resp.Code, resp.Message); err != nil {
		st.close()
		return nil, fmt.Errorf("get %s: %w", h, err)
	}
	if (length != 0 && resp.Length != length) || (length == 0 && resp.Length != resp.Size-offset) {
		st.reset()
		return nil, fmt.Errorf("get %s from %s: %w: %d bytes announced", h, p, errBadResponse, resp.Length)
	}
	if err := st.SetDeadline(time.Now().Add(c.bodyTimeout(resp.Length))); err != nil {
		st.reset()
		return nil, fmt.Errorf("get %s: %w", h, err)
	}
	b := &body{st: st, left: resp.Length, h: h, p: p}
	if offset == 0 && resp.Length == resp.Size {
		b.sum = sha256.New()
		b.want = want
		if want.IsZero() {
			copy(b.want[:], resp.Hash)
		}
	}
	return b, nil
}

// body reads a get's bytes and checks them at the end.
type body struct {
	st   *stream
	left int64
	sum  hash.Hash // nil for partial reads
	want crypto.ID
	h    store.Handle
	p    peer.ID
	err  error
}

func (b *body) Read(buf []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.left == 0 {
		b.err = b.finish()
		return 0, b.err
	}
	if int64(len(buf)) > b.left {
		buf = buf[:b.left]
	}
	n, err := b.st.Read(buf)
	b.left -= int64(n)
	if b.sum != nil {
		b.sum.Write(buf[:n])
	}
	if err != nil && !(errors.Is(err, io.EOF) && b.left == 0) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err = fmt.Errorf("get %s from %s: %w", b.h, b.p, err)
		return n, b.err
	}
	if b.left == 0 {
		if err := b.finish(); err != io.EOF {
			b.err = err
			return n, err
		}
	}
	return n, nil
}

func (b *body) finish() error {
	if b.sum != nil && !bytes.Equal(b.sum.Sum(nil), b.want[:]) {
		return fmt.Errorf("get %s from %s: %w: %w", b.h, b.p, errBadResponse, wire.ErrHashMismatch)
	}
	return io.EOF
}

func (b *body) Close() error {
	if b.left == 0 {
		b.st.close()
	} else {
		b.st.reset()
	}
	return nil
}

// Held describes an object a host keeps for the owner.
type Held struct {
	Handle store.Handle
	Size   int64
	Hash   crypto.ID
	Until  time.Time // lease end; may be past if the host has not collected it yet
}

func held(e wire.Entry) (Held, error) {
	h, err := e.Object.Handle()
	if err != nil {
		return Held{}, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	var sum crypto.ID
	copy(sum[:], e.Hash)
	return Held{Handle: h, Size: e.Size, Hash: sum, Until: time.Unix(e.Until, 0)}, nil
}

// Has asks p which of hs it holds for the owner. Objects it does not hold
// are absent from the map.
func (c *Client) Has(ctx context.Context, p peer.ID, hs []store.Handle) (map[store.Handle]Held, error) {
	out := map[store.Handle]Held{}
	for len(hs) > 0 {
		n := min(len(hs), wire.MaxObjects)
		req := &wire.HasReq{}
		asked := map[store.Handle]bool{}
		for _, h := range hs[:n] {
			req.Objects = append(req.Objects, wire.ObjectOf(h))
			asked[h] = true
		}
		hs = hs[n:]
		var resp wire.HasResp
		if err := c.roundTrip(ctx, p, wire.ProtoHas, req, &resp); err != nil {
			return nil, err
		}
		if err := refused(wire.ProtoHas, p, resp.Code, resp.Message); err != nil {
			return nil, err
		}
		for _, e := range resp.Entries {
			hd, err := held(e)
			if err != nil {
				return nil, fmt.Errorf("has from %s: %w", p, err)
			}
			if !asked[hd.Handle] {
				return nil, fmt.Errorf("has from %s: %w: %s was not asked for", p, errBadResponse, hd.Handle)
			}
			out[hd.Handle] = hd
		}
	}
	return out, nil
}

// List calls fn for every object p holds for the owner, of type t (every
// type when t is empty), in (type, name) order, a page at a time. An
// error from fn stops the listing and is returned.
func (c *Client) List(ctx context.Context, p peer.ID, t store.Type, fn func(Held) error) error {
	var after wire.Object
	for {
		var resp wire.HasResp
		req := &wire.HasReq{ListType: string(t), After: after, Limit: wire.MaxObjects}
		if err := c.roundTrip(ctx, p, wire.ProtoHas, req, &resp); err != nil {
			return err
		}
		if err := refused(wire.ProtoHas, p, resp.Code, resp.Message); err != nil {
			return err
		}
		for _, e := range resp.Entries {
			hd, err := held(e)
			if err != nil {
				return fmt.Errorf("list from %s: %w", p, err)
			}
			o := wire.ObjectOf(hd.Handle)
			if o.Type < after.Type || (o.Type == after.Type && o.Name <= after.Name) {
				return fmt.Errorf("list from %s: %w: out of order", p, errBadResponse)
			}
			after = o
			if err := fn(hd); err != nil {
				return err
			}
		}
		if !resp.More || len(resp.Entries) == 0 {
			return nil
		}
	}
}

func handles(objs []wire.Object) []store.Handle {
	var out []store.Handle
	for _, o := range objs {
		out = append(out, store.Handle{Type: store.Type(o.Type), Name: o.Name})
	}
	return out
}

// change sends renew or delete requests in batches and gathers what the
// host reported missing.
func (c *Client) change(ctx context.Context, p peer.ID, hs []store.Handle, send func([]wire.Object) (wire.ChangeResp, error)) ([]store.Handle, error) {
	var missing []store.Handle
	for len(hs) > 0 {
		n := min(len(hs), wire.MaxObjects)
		var objs []wire.Object
		for _, h := range hs[:n] {
			objs = append(objs, wire.ObjectOf(h))
		}
		hs = hs[n:]
		resp, err := send(objs)
		if err != nil {
			return missing, err
		}
		missing = append(missing, handles(resp.Missing)...)
	}
	return missing, nil
}

// Renew extends the leases of hs on p to until (a host never shortens a
// lease). It returns the objects p does not hold.
func (c *Client) Renew(ctx context.Context, p peer.ID, hs []store.Handle, until time.Time) (missing []store.Handle, err error) {
	return c.change(ctx, p, hs, func(objs []wire.Object) (wire.ChangeResp, error) {
		var resp wire.ChangeResp
		if err := c.roundTrip(ctx, p, wire.ProtoRenew, &wire.RenewReq{Objects: objs, Until: until.Unix()}, &resp); err != nil {
			return resp, err
		}
		return resp, refused(wire.ProtoRenew, p, resp.Code, resp.Message)
	})
}

// Delete removes hs from p. It returns the objects p did not hold.
func (c *Client) Delete(ctx context.Context, p peer.ID, hs []store.Handle) (missing []store.Handle, err error) {
	return c.change(ctx, p, hs, func(objs []wire.Object) (wire.ChangeResp, error) {
		var resp wire.ChangeResp
		if err := c.roundTrip(ctx, p, wire.ProtoDelete, &wire.DeleteReq{Objects: objs}, &resp); err != nil {
			return resp, err
		}
		return resp, refused(wire.ProtoDelete, p, resp.Code, resp.Message)
	})
}

// Audit challenges p to prove it holds h, of size bytes with the Merkle
// root the owner recorded at upload (wire.MerkleRoot), by returning
// leaves randomly chosen leaves with their proof paths (at most
// wire.MaxAuditLeaves).
//
// ok is true only if every leaf checks out. A host that answers with a
// wrong leaf or path gives ok false and a nil error; a host that says it
// does not hold the object gives an error wrapping store.ErrNotFound; any
// other error means the audit could not be made (host offline, ...).
func (c *Client) Audit(ctx context.Context, p peer.ID, h store.Handle, size int64, root [32]byte, leaves int) (ok bool, err error) {
	if err := h.Valid(); err != nil {
		return false, fmt.Errorf("audit: %w", err)
	}
	n := wire.LeafCount(size)
	leaves = max(1, min(leaves, wire.MaxAuditLeaves))
	idx := make([]uint64, 0, leaves)
	seen := map[uint64]bool{}
	for len(idx) < leaves && uint64(len(idx)) < n {
		i := rand.Uint64N(n)
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	proofs, err := c.AuditProofs(ctx, p, h, idx)
	if err != nil {
		return false, err
	}
	if len(proofs) != len(idx) {
		return false, nil
	}
	for k, l := range proofs {
		if l.Index != idx[k] || wire.VerifyLeaf(root, size, l.Index, l.Data, l.Path) != nil {
			return false, nil
		}
	}
	return true, nil
}
