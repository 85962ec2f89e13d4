package hosting

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// errViolation marks a breach of the protocol: malformed or oversized
// frames, a body longer or shorter than announced, a stalled header. The
// stream is reset, the connection closed and the peer refused for a while.
var errViolation = errors.New("protocol violation")

// errStream marks a failure of the stream itself (reset, closed, timed
// out while moving a body): the stream is reset, nothing is answered.
var errStream = errors.New("stream failed")

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errViolation, fmt.Sprintf(format, args...))
}

// readErr classifies an error from reading a frame.
func readErr(err error) error {
	var te interface{ Timeout() bool }
	if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrFrameTooLarge) ||
		errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &te) && te.Timeout()) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", errViolation, err)
	}
	return fmt.Errorf("%w: %w", errStream, err)
}

func writeErr(err error) error { return fmt.Errorf("%w: %w", errStream, err) }

// copyBuffer is the buffer size for bodies: large writes keep the
// per-frame cost of the stream multiplexer low.
const copyBuffer = 256 << 10

// call is one authenticated request, in native form.
type call struct {
	proto  protocol.ID
	st     network.Stream
	remote peer.ID
	owner  string
	pub    ed25519.PublicKey
	body   []byte
	log    *slog.Logger
}

type opFunc func(ctx context.Context, c *call) error

func (s *Server) op(p protocol.ID) opFunc {
	switch p {
	case wire.ProtoOffer:
		return s.handleOffer
	case wire.ProtoPut:
		return s.handlePut
	case wire.ProtoGet:
		return s.handleGet
	case wire.ProtoHas:
		return s.handleHas
	case wire.ProtoRenew:
		return s.handleRenew
	case wire.ProtoDelete:
		return s.handleDelete
	case wire.ProtoAudit:
		return s.handleAudit
	}
	return nil
}

// refusal is the response a protocol sends for a refused request.
func refusal(p protocol.ID, code wire.Code, msg string) wire.Message {
	switch p {
	case wire.ProtoOffer:
		return &wire.OfferResp{Code: code, Message: msg}
	case wire.ProtoPut:
		return &wire.PutResp{Code: code, Message: msg}
	case wire.ProtoGet:
		return &wire.GetResp{Code: code, Message: msg}
	case wire.ProtoHas:
		return &wire.HasResp{Code: code, Message: msg}
	case wire.ProtoAudit:
		return &wire.AuditResp{Code: code, Message: msg}
	default:
		return &wire.ChangeResp{Code: code, Message: msg}
	}
}

func (s *Server) handler(proto protocol.ID) network.StreamHandler {
	fn := s.op(proto)
	return func(st network.Stream) {
		remote := st.Conn().RemotePeer()
		log := s.log.With("peer", remote.String(), "protocol", string(proto))
		release, outcome, refusals := s.limits.admit(remote)
		switch outcome {
		case refusedBanned:
			log.Debug("refused stream of a cut-off peer")
			st.Reset()
			return
		case refusedBusy, refusedRate:
			// A flood must not flood the log: the 1st, 2nd, 4th, 8th… refusal.
			if refusals&(refusals-1) == 0 {
				log.Warn("refused stream: peer over its limits", "rate", outcome == refusedRate, "refusals", refusals)
			}
			st.Reset()
			return
		}
		defer release()
		if !s.enter() {
			st.Reset()
			return
		}
		defer s.inflight.Done()
		ctx, cancel := context.WithCancel(s.base)
		defer cancel()
		stopReset := context.AfterFunc(ctx, func() { st.Reset() })
		defer stopReset()
		err := s.serve(ctx, st, proto, remote, fn, log)
		switch {
		case err == nil:
			st.Close()
		case errors.Is(err, errViolation):
			s.cutOff(remote, st, log, err)
		default:
			st.Reset()
			log.Info("stream aborted", "err", err)
		}
	}
}

// cutOff refuses the peer for the penalty time (before the peer can see
// the reset), resets the stream and closes the peer's connections.
func (s *Server) cutOff(p peer.ID, st network.Stream, log *slog.Logger, err error) {
	s.limits.ban(p)
	st.Reset()
	log.Warn("peer cut off", "err", err, "for", s.lim.Penalty)
	s.hostMu.Lock()
	h := s.host
	s.hostMu.Unlock()
	if h != nil {
		_ = h.Network().ClosePeer(p)
	}
}

func (s *Server) serve(ctx context.Context, st network.Stream, proto protocol.ID, remote peer.ID, fn opFunc, log *slog.Logger) error {
	if err := st.SetDeadline(time.Now().Add(s.lim.HeaderTimeout)); err != nil {
		return writeErr(err)
	}
	nonce := make([]byte, wire.NonceSize)
	rand.Read(nonce)
	if err := s.codec.WriteMsg(st, &wire.Challenge{Nonce: nonce}); err != nil {
		return writeErr(err)
	}
	var req wire.Request
	if err := s.codec.ReadMsg(st, &req); err != nil {
		return readErr(err)
	}
	c := &call{proto: proto, st: st, remote: remote, body: req.Body, log: log}
	err := s.authorize(c, nonce, st.Conn().LocalPeer(), &req)
	if err == nil {
		c.log = log.With("owner", c.owner)
		err = fn(ctx, c)
	}
	if err == nil || errors.Is(err, errViolation) || errors.Is(err, errStream) {
		return err
	}
	code := wire.CodeOf(err)
	msg := err.Error()
	if code == wire.CodeInternal {
		log.Error("request failed", "err", err)
		msg = "internal error"
	} else {
		log.Debug("request refused", "code", code.String(), "err", err)
	}
	msg = strings.TrimPrefix(msg, code.String()+": ")
	if len(msg) > wire.MaxMessageLen {
		msg = strings.ToValidUTF8(msg[:wire.MaxMessageLen], "")
	}
	if err := s.codec.WriteMsg(st, refusal(proto, code, msg)); err != nil {
		return writeErr(err)
	}
	return nil
}

// authorize checks the ownership proof of a request and fills in the
// owner. Blocked peers are refused here whatever they prove.
func (s *Server) authorize(c *call, nonce []byte, self peer.ID, req *wire.Request) error {
	if s.policy.Trust(c.remote) == TrustBlocked {
		return fmt.Errorf("%w: peer is blocked", wire.ErrNotTrusted)
	}
	msg := wire.ProofMessage(nonce, self, c.remote, c.proto, req.Body)
	pub := ed25519.PublicKey(bytes.Clone(req.Auth.OwnerPub))
	if len(req.Auth.Cert) == 0 {
		if !crypto.Verify(pub, wire.ProofDomain, msg, req.Auth.Sig) {
			return fmt.Errorf("%w: bad owner signature", wire.ErrBadProof)
		}
	} else {
		cert, err := crypto.ParseNodeCert(req.Auth.Cert)
		if err != nil {
			return fmt.Errorf("%w: %v", wire.ErrBadProof, err)
		}
		if !bytes.Equal(cert.OwnerPub, pub) {
			return fmt.Errorf("%w: certificate of another owner", wire.ErrBadProof)
		}
		if err := cert.Verify(c.remote.String(), s.now()); err != nil {
			return fmt.Errorf("%w: %v", wire.ErrBadProof, err)
		}
		pk, err := c.remote.ExtractPublicKey()
		if err != nil {
			return fmt.Errorf("%w: node key: %v", wire.ErrBadProof, err)
		}
		if ok, err := pk.Verify(wire.NodeSignedBytes(msg), req.Auth.Sig); err != nil || !ok {
			return fmt.Errorf("%w: bad node signature", wire.ErrBadProof)
		}
	}
	c.owner = crypto.OwnerID(pub)
	c.pub = pub
	return nil
}

func (s *Server) decode(c *call, m wire.Message) error {
	if err := s.codec.Unmarshal(c.body, m); err != nil {
		return fmt.Errorf("%w: %w", errViolation, err)
	}
	return nil
}

func (s *Server) reply(c *call, m wire.Message) error {
	if err := s.codec.WriteMsg(c.st, m); err != nil {
		return writeErr(err)
	}
	return nil
}

func (s *Server) handleOffer(ctx context.Context, c *call) error {
	var req wire.OfferReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	now := s.now()
	st := s.Settings()
	maxUntil := now.Add(st.MaxLease).Unix()
	resp := &wire.OfferResp{MaxUntil: maxUntil}
	err := checkLease(time.Unix(req.Until, 0), now, st)
	if err == nil {
		var r room
		r, err = s.offer(ctx, c.remote, c.owner, req.Bytes)
		resp.Free = r.min()
	}
	if err != nil {
		resp.Code = wire.CodeOf(err)
		if resp.Code == wire.CodeInternal {
			return err
		}
		resp.Message = err.Error()
	}
	return s.reply(c, resp)
}

func (s *Server) handlePut(ctx context.Context, c *call) error {
	var req wire.PutReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	h, err := req.Object.Handle()
	if err != nil {
		return err
	}
	var sum crypto.ID
	copy(sum[:], req.Hash)
	if id, ok := wire.ContentID(h); ok && id != sum {
		return fmt.Errorf("%w: %s is named for other bytes than announced", wire.ErrHashMismatch, h)
	}
	now := s.now()
	until := time.Unix(req.Until, 0)
	if err := checkLease(until, now, s.Settings()); err != nil {
		return err
	}
	// Idempotent: the same bytes again only extend the lease.
	old, err := s.db.get(ctx, c.owner, h)
	switch {
	case err == nil && bytes.Equal(old.Hash, sum[:]) && old.Size == req.Size:
		if _, err := s.db.extend(ctx, c.owner, h, until); err != nil {
			return err
		}
		return s.reply(c, &wire.PutResp{Code: wire.CodeOK, Have: true, Until: max(old.Until.Unix(), req.Until)})
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	release, err := s.reserve(ctx, c.remote, c.owner, req.Size)
	if err != nil {
		return err
	}
	defer release()
	if err := s.reply(c, &wire.PutResp{Code: wire.CodeOK}); err != nil {
		return err
	}

	// The body: exactly Size bytes, then the end of the stream.
	if err := c.st.SetDeadline(time.Now().Add(s.lim.bodyTimeout(req.Size))); err != nil {
		return writeErr(err)
	}
	up, err := s.files.newUpload()
	if err != nil {
		return err
	}
	defer up.abort()
	buf := make([]byte, min(req.Size, copyBuffer)+1)
	n, err := io.CopyBuffer(up, io.LimitReader(c.st, req.Size), buf)
	if err == nil && n < req.Size {
		err = io.EOF
	}
	if err != nil {
		if up.werr != nil {
			return fmt.Errorf("%w: write upload: %w", errStream, up.werr)
		}
		if errors.Is(err, io.EOF) {
			return violation("body ended after %d of %d bytes", n, req.Size)
		}
		c.log.Info("upload aborted", "object", h.String(), "received", n, "size", req.Size, "err", err)
		return fmt.Errorf("%w: receive body: %w", errStream, err)
	}
	var one [1]byte
	k, err := c.st.Read(one[:])
	if k > 0 {
		return violation("body longer than the announced %d bytes", req.Size)
	}
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: wait for end of body: %w", errStream, err)
	}
	if got := up.sum.Sum(nil); !bytes.Equal(got, sum[:]) {
		up.abort()
		c.log.Warn("upload refused: hash mismatch", "object", h.String())
		return fmt.Errorf("%w: received bytes hash to %x", wire.ErrHashMismatch, got)
	}

	unlock := s.lockObject(c.owner, h)
	err = s.files.commit(up, c.owner, h)
	if err == nil {
		err = s.db.commit(ctx, row{Owner: c.owner, Handle: h, Size: req.Size, Hash: sum[:], Peer: c.remote, Until: until}, c.pub, now)
		if err != nil {
			_ = s.files.remove(c.owner, h)
		}
	}
	unlock()
	if err != nil {
		return err
	}
	c.log.Debug("object stored", "object", h.String(), "size", req.Size)
	return s.reply(c, &wire.PutResp{Code: wire.CodeOK, Until: req.Until})
}

// lookup finds a live object of the caller's owner.
func (s *Server) lookup(ctx context.Context, c *call, o wire.Object) (row, error) {
	h, err := o.Handle()
	if err != nil {
		return row{}, err
	}
	r, err := s.db.get(ctx, c.owner, h)
	if err != nil {
		return r, err
	}
	if r.Until.Before(s.now()) {
		return r, fmt.Errorf("%s: lease ended: %w", h, store.ErrNotFound)
	}
	return r, nil
}

func (s *Server) open(c *call, r row) (*os.File, error) {
	f, err := s.files.open(c.owner, r.Handle)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.log.Error("hosted object lost: file missing", "object", r.Handle.String())
		}
		return nil, err
	}
	return f, nil
}

func (s *Server) handleGet(ctx context.Context, c *call) error {
	var req wire.GetReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	r, err := s.lookup(ctx, c, req.Object)
	if err != nil {
		return err
	}
	length := req.Length
	if length == 0 {
		length = r.Size - req.Offset
	}
	if req.Offset > r.Size || length < 0 || req.Offset+length > r.Size {
		return fmt.Errorf("%w: range %d+%d of %d bytes", wire.ErrBadRequest, req.Offset, req.Length, r.Size)
	}
	f, err := s.open(c, r)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.reply(c, &wire.GetResp{Code: wire.CodeOK, Length: length, Size: r.Size, Hash: r.Hash}); err != nil {
		return err
	}
	if err := c.st.SetDeadline(time.Now().Add(s.lim.bodyTimeout(length))); err != nil {
		return writeErr(err)
	}
	buf := make([]byte, min(length, copyBuffer)+1)
	if _, err := io.CopyBuffer(c.st, io.NewSectionReader(f, req.Offset, length), buf); err != nil {
		return fmt.Errorf("%w: send body: %w", errStream, err)
	}
	return nil
}

func entry(r row) wire.Entry {
	return wire.Entry{Object: wire.ObjectOf(r.Handle), Size: r.Size, Hash: r.Hash, Until: r.Until.Unix()}
}

func (s *Server) handleHas(ctx context.Context, c *call) error {
	var req wire.HasReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp := &wire.HasResp{Code: wire.CodeOK}
	if len(req.Objects) > 0 {
		for _, o := range req.Objects {
			h, err := o.Handle()
			if err != nil {
				continue // never held
			}
			r, err := s.db.get(ctx, c.owner, h)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			resp.Entries = append(resp.Entries, entry(r))
		}
		return s.reply(c, resp)
	}
	t := store.Type(req.ListType)
	if t != "" && !validType(t) {
		return fmt.Errorf("%w: unknown type %q", wire.ErrBadRequest, t)
	}
	limit := req.Limit
	if limit <= 0 || limit > wire.MaxObjects {
		limit = wire.MaxObjects
	}
	after := store.Handle{Type: store.Type(req.After.Type), Name: req.After.Name}
	rows, err := s.db.list(ctx, c.owner, t, after, limit+1)
	if err != nil {
		return err
	}
	if len(rows) > limit {
		rows, resp.More = rows[:limit], true
	}
	for _, r := range rows {
		resp.Entries = append(resp.Entries, entry(r))
	}
	return s.reply(c, resp)
}

func validType(t store.Type) bool {
	for _, x := range store.Types {
		if x == t {
			return true
		}
	}
	return false
}

func (s *Server) handleRenew(ctx context.Context, c *call) error {
	var req wire.RenewReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	until := time.Unix(req.Until, 0)
	if err := checkLease(until, s.now(), s.Settings()); err != nil {
		return err
	}
	resp := &wire.ChangeResp{Code: wire.CodeOK}
	hs, objs := s.validObjects(req.Objects, resp)
	found, err := s.db.extendMany(ctx, c.owner, hs, until)
	if err != nil {
		return err
	}
	for i, ok := range found {
		if !ok {
			resp.Missing = append(resp.Missing, objs[i])
		}
	}
	return s.reply(c, resp)
}

// validObjects splits objects into valid handles (with their wire form)
// and invalid ones, which go to resp.Missing: a host never holds those.
func (s *Server) validObjects(in []wire.Object, resp *wire.ChangeResp) ([]store.Handle, []wire.Object) {
	var hs []store.Handle
	var objs []wire.Object
	for _, o := range in {
		h, err := o.Handle()
		if err != nil {
			resp.Missing = append(resp.Missing, o)
			continue
		}
		hs = append(hs, h)
		objs = append(objs, o)
	}
	return hs, objs
}

func (s *Server) handleDelete(ctx context.Context, c *call) error {
	var req wire.DeleteReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	resp := &wire.ChangeResp{Code: wire.CodeOK}
	hs, objs := s.validObjects(req.Objects, resp)
	keys := make([]key, len(hs))
	for i, h := range hs {
		keys[i] = key{c.owner, h}
	}
	sizes, err := s.removeObjects(ctx, keys, time.Time{})
	if err != nil {
		return err
	}
	for i, n := range sizes {
		if n < 0 {
			resp.Missing = append(resp.Missing, objs[i])
		}
	}
	return s.reply(c, resp)
}

func (s *Server) handleAudit(ctx context.Context, c *call) error {
	var req wire.AuditReq
	if err := s.decode(c, &req); err != nil {
		return err
	}
	r, err := s.lookup(ctx, c, req.Object)
	if err != nil {
		return err
	}
	n := wire.LeafCount(r.Size)
	for _, i := range req.Leaves {
		if i >= n {
			return fmt.Errorf("%w: leaf %d of %d", wire.ErrBadRequest, i, n)
		}
	}
	f, err := s.open(c, r)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := c.st.SetDeadline(time.Now().Add(s.lim.bodyTimeout(r.Size))); err != nil {
		return writeErr(err)
	}
	// The tree is rebuilt from the file on every audit: the host keeps no
	// state that could answer without the bytes.
	m := wire.NewMerkleHasher()
	if _, err := io.Copy(m, f); err != nil {
		return fmt.Errorf("audit %s: read: %w", r.Handle, err)
	}
	paths, err := m.Paths(req.Leaves)
	if err != nil {
		return fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	resp := &wire.AuditResp{Code: wire.CodeOK, Size: r.Size}
	for k, i := range req.Leaves {
		data := make([]byte, wire.LeafLen(m.Size(), i))
		if _, err := f.ReadAt(data, int64(i)*wire.LeafSize); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("audit %s: read leaf %d: %w", r.Handle, i, err)
		}
		resp.Leaves = append(resp.Leaves, wire.AuditLeaf{Index: i, Data: data, Path: paths[k]})
	}
	return s.reply(c, resp)
}
