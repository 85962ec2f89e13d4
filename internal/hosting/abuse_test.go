package hosting_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/hosting"
	"github.com/cairn-backup/cairn/internal/wire"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// rawStream opens a stream and reads the host's challenge.
func rawStream(t *testing.T, o *owner, th *testHost, proto protocol.ID) (network.Stream, []byte) {
	t.Helper()
	st, err := o.h.NewStream(context.Background(), th.h.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	var ch wire.Challenge
	if err := wire.NewCodec().ReadMsg(st, &ch); err != nil {
		t.Fatal(err)
	}
	return st, ch.Nonce
}

// signed builds a valid request for body on a stream with nonce.
func signed(t *testing.T, o *owner, th *testHost, proto protocol.ID, nonce []byte, body wire.Message) *wire.Request {
	t.Helper()
	b, err := wire.NewCodec().Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	msg := wire.ProofMessage(nonce, th.h.ID(), o.h.ID(), proto, b)
	return &wire.Request{Auth: wire.Auth{OwnerPub: o.keys.OwnerPublic(), Sig: o.keys.Sign(wire.ProofDomain, msg)}, Body: b}
}

// expectReset waits for the host to end the stream without an answer.
func expectReset(t *testing.T, st network.Stream) {
	t.Helper()
	b, err := io.ReadAll(st)
	if err == nil {
		t.Fatalf("stream ended cleanly after %d bytes, want a reset", len(b))
	}
	st.Reset()
}

// expectCutOff checks that the host refuses the peer now, while an honest
// owner is still served and nothing was stored.
func expectCutOff(t *testing.T, th *testHost, bad, honest *owner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := bad.client.Offer(ctx, th.h.ID(), 1, th.until())
	var we *wire.Error
	if err == nil || errors.As(err, &we) {
		t.Fatalf("cut-off peer was answered: %v", err)
	}
	if _, err := honest.client.Offer(ctx, th.h.ID(), 1, th.until()); err != nil {
		t.Fatalf("honest peer refused: %v", err)
	}
	if f := files(t, th.dir, "objects"); len(f) != 0 {
		t.Fatalf("objects stored: %v", f)
	}
	if f := files(t, th.dir, "tmp"); len(f) != 0 {
		t.Fatalf("temporary files left: %v", f)
	}
}

func TestMisbehavingPeersAreCutOff(t *testing.T) {
	th := startHost(t, "tcp", func(c *hosting.Config) { c.Limits.HeaderTimeout = 500 * time.Millisecond })
	honest := newOwner(t, "tcp", th)
	codec := wire.NewCodec()
	data := []byte("0123456789")
	sum := sha256.Sum256(data)
	put := &wire.PutReq{Object: wire.ObjectOf(pack(data)), Size: 10, Hash: sum[:], Until: th.until().Unix()}

	tests := []struct {
		name string
		act  func(t *testing.T, bad *owner)
	}{
		{"oversized frame", func(t *testing.T, bad *owner) {
			st, _ := rawStream(t, bad, th, wire.ProtoGet)
			var hdr [4]byte
			binary.BigEndian.PutUint32(hdr[:], wire.MaxFrameSize+1)
			st.Write(hdr[:])
			st.Write(make([]byte, 1024))
			expectReset(t, st)
		}},
		{"garbage", func(t *testing.T, bad *owner) {
			st, _ := rawStream(t, bad, th, wire.ProtoHas)
			wire.WriteFrame(st, []byte("\xff\xfe not cbor at all"))
			expectReset(t, st)
		}},
		{"garbage body", func(t *testing.T, bad *owner) {
			st, nonce := rawStream(t, bad, th, wire.ProtoPut)
			req := signed(t, bad, th, wire.ProtoPut, nonce, &wire.GetReq{Object: wire.Object{Type: "data", Name: "x"}})
			req.Body = append(req.Body, 0x00) // trailing byte: the signature still matches
			msg := wire.ProofMessage(nonce, th.h.ID(), bad.h.ID(), wire.ProtoPut, req.Body)
			req.Auth.Sig = bad.keys.Sign(wire.ProofDomain, msg)
			codec.WriteMsg(st, req)
			expectReset(t, st)
		}},
		{"body longer than announced", func(t *testing.T, bad *owner) {
			st, nonce := rawStream(t, bad, th, wire.ProtoPut)
			codec.WriteMsg(st, signed(t, bad, th, wire.ProtoPut, nonce, put))
			var ready wire.PutResp
			if err := codec.ReadMsg(st, &ready); err != nil || ready.Code != wire.CodeOK {
				t.Fatalf("put refused: %v %v", ready.Code, err)
			}
			st.Write(append(bytes.Clone(data), data...))
			st.CloseWrite()
			expectReset(t, st)
		}},
		{"body shorter than announced", func(t *testing.T, bad *owner) {
			st, nonce := rawStream(t, bad, th, wire.ProtoPut)
			codec.WriteMsg(st, signed(t, bad, th, wire.ProtoPut, nonce, put))
			var ready wire.PutResp
			if err := codec.ReadMsg(st, &ready); err != nil || ready.Code != wire.CodeOK {
				t.Fatalf("put refused: %v %v", ready.Code, err)
			}
			st.Write(data[:4])
			st.CloseWrite()
			expectReset(t, st)
		}},
		{"stall", func(t *testing.T, bad *owner) {
			st, _ := rawStream(t, bad, th, wire.ProtoGet)
			st.Write([]byte{0, 0}) // half a frame length, then nothing
			expectReset(t, st)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := newOwner(t, "tcp", th)
			tt.act(t, bad)
			expectCutOff(t, th, bad, honest)
		})
	}
}

func TestFloodingPeerIsLimited(t *testing.T) {
	th := startHost(t, "tcp", func(c *hosting.Config) {
		c.Limits = hosting.Limits{RequestRate: 0.001, RequestBurst: 3, StreamsPerPeer: 2}
	})
	ctx := context.Background()
	t.Run("rate", func(t *testing.T) {
		o := newOwner(t, "tcp", th)
		for i := range 3 {
			if _, err := o.client.Offer(ctx, th.h.ID(), 1, th.until()); err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
		}
		if _, err := o.client.Offer(ctx, th.h.ID(), 1, th.until()); err == nil {
			t.Fatal("request beyond the burst answered")
		}
	})
	t.Run("concurrent streams", func(t *testing.T) {
		o := newOwner(t, "tcp", th)
		a, _ := rawStream(t, o, th, wire.ProtoHas)
		b, _ := rawStream(t, o, th, wire.ProtoHas)
		defer a.Reset()
		defer b.Reset()
		st, err := o.h.NewStream(ctx, th.h.ID(), wire.ProtoHas)
		if err != nil {
			return // refused before it opened: fine
		}
		expectReset(t, st)
	})
}
