package hostclient_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/wire"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// These tests run the client against a fake host that lies, to show the
// client checks what it receives. The honest host is tested in package
// hosting.

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// liar serves proto with answer, after the challenge and the request.
func liar(t *testing.T, h host.Host, id string, answer func(s network.Stream)) {
	codec := wire.NewCodec()
	h.SetStreamHandler(protoOf(id), func(s network.Stream) {
		defer s.Close()
		codec.WriteMsg(s, &wire.Challenge{Nonce: make([]byte, wire.NonceSize)})
		var req wire.Request
		if err := codec.ReadMsg(s, &req); err != nil {
			s.Reset()
			return
		}
		answer(s)
	})
}

func protoOf(id string) protocol.ID { return protocol.ID(id) }

func setup(t *testing.T) (*hostclient.Client, host.Host) {
	t.Helper()
	mk, _ := crypto.NewMasterKey()
	hh, oh := newHost(t), newHost(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := oh.Connect(ctx, peer.AddrInfo{ID: hh.ID(), Addrs: hh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	return hostclient.New(oh, hostclient.OwnerSigner(crypto.Derive(mk)), hostclient.Options{}), hh
}

func TestGetDetectsLyingHost(t *testing.T) {
	c, hh := setup(t)
	codec := wire.NewCodec()
	data := []byte("the real bytes of the object")
	h := store.Handle{Type: store.Pack, Name: crypto.Hash(data).String()}
	wrong := []byte("other bytes of the same size!")[:len(data)]
	sum := sha256.Sum256(wrong)
	var body []byte
	var announced int64
	liar(t, hh, string(wire.ProtoGet), func(s network.Stream) {
		codec.WriteMsg(s, &wire.GetResp{Code: wire.CodeOK, Length: announced, Size: int64(len(data)), Hash: sum[:]})
		s.Write(body)
	})
	ctx := context.Background()
	tests := []struct {
		name      string
		body      []byte
		announced int64
		want      error
	}{
		{"wrong bytes", wrong, int64(len(data)), wire.ErrHashMismatch},
		{"short body", data[:5], int64(len(data)), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, announced = tt.body, tt.announced
			rc, err := c.Get(ctx, hh.ID(), h, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(rc)
			rc.Close()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("more than asked", func(t *testing.T) {
		body, announced = data, int64(len(data))
		if _, err := c.Get(ctx, hh.ID(), h, 0, 3); err == nil {
			t.Fatal("an answer longer than the request was accepted")
		}
	})
	t.Run("checked against the caller's hash", func(t *testing.T) {
		body, announced = wrong, int64(len(wrong))
		shard := store.Handle{Type: store.Pack, Name: h.Name + "-s01"}
		rc, err := c.GetChecked(ctx, hh.ID(), shard, crypto.Hash(data))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if _, err := io.ReadAll(rc); !errors.Is(err, wire.ErrHashMismatch) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestAuditDetectsWrongProof(t *testing.T) {
	c, hh := setup(t)
	codec := wire.NewCodec()
	data := bytes.Repeat([]byte("leaf"), 3*wire.LeafSize)
	root := wire.MerkleRoot(data)
	h := store.Handle{Type: store.Pack, Name: crypto.Hash(data).String()}
	m := wire.NewMerkleHasher()
	m.Write(data)
	liar(t, hh, string(wire.ProtoAudit), func(s network.Stream) {
		// Always answers leaf 0, whatever was asked, with a good path.
		paths, _ := m.Paths([]uint64{0})
		codec.WriteMsg(s, &wire.AuditResp{Code: wire.CodeOK, Size: int64(len(data)),
			Leaves: []wire.AuditLeaf{{Index: 0, Data: data[:wire.LeafSize], Path: paths[0]}}})
	})
	ok, err := c.Audit(context.Background(), hh.ID(), h, int64(len(data)), root, 2)
	if err != nil || ok {
		t.Fatalf("audit of a host answering the wrong leaves: %v %v", ok, err)
	}
}

func TestPutNeedsAHash(t *testing.T) {
	c, hh := setup(t)
	ctx := context.Background()
	obj := hostclient.Object{Handle: store.Handle{Type: store.Config, Name: store.ConfigName}, Size: 1, Until: time.Now().Add(time.Hour)}
	if _, err := c.Put(ctx, hh.ID(), obj, bytes.NewReader([]byte{1})); !errors.Is(err, wire.ErrBadRequest) {
		t.Fatalf("config without a hash: %v", err)
	}
	obj.Handle = store.Handle{Type: store.Pack, Name: "../escape"}
	if _, err := c.Put(ctx, hh.ID(), obj, bytes.NewReader([]byte{1})); !errors.Is(err, store.ErrInvalidHandle) {
		t.Fatalf("invalid name: %v", err)
	}
}

func TestStallingHostTimesOut(t *testing.T) {
	mk, _ := crypto.NewMasterKey()
	hh, oh := newHost(t), newHost(t)
	if err := oh.Connect(context.Background(), peer.AddrInfo{ID: hh.ID(), Addrs: hh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	c := hostclient.New(oh, hostclient.OwnerSigner(crypto.Derive(mk)), hostclient.Options{HeaderTimeout: 300 * time.Millisecond})
	release := make(chan struct{})
	defer close(release)
	liar(t, hh, string(wire.ProtoHas), func(s network.Stream) { <-release })
	if _, err := c.Has(context.Background(), hh.ID(), []store.Handle{{Type: store.Pack, Name: "ab"}}); err == nil {
		t.Fatal("a host that never answers was answered")
	}
	// A host that sends garbage instead of an answer.
	liar(t, hh, string(wire.ProtoDelete), func(s network.Stream) { wire.WriteFrame(s, []byte("\xff garbage")) })
	if _, err := c.Delete(context.Background(), hh.ID(), []store.Handle{{Type: store.Pack, Name: "ab"}}); !errors.Is(err, wire.ErrMalformed) {
		t.Fatalf("garbage answer: %v", err)
	}
}
