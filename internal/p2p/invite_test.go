package p2p

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func testKey(t testing.TB) crypto.PubKey {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestInviteRoundTrip(t *testing.T) {
	pub := testKey(t)
	var secret [secretSize]byte
	copy(secret[:], "0123456789")
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/192.168.1.7/tcp/4521"),
		ma.StringCast("/ip4/192.168.1.7/udp/4521/quic-v1"),
		ma.StringCast("/ip6/2001:db8::1/tcp/4521"),
		ma.StringCast("/ip6/2001:db8::1/udp/4522/quic-v1"),
		ma.StringCast("/dns4/example.com/tcp/1"),                  // not packable: left out
		ma.StringCast("/ip4/10.0.0.1/udp/5/quic-v1/webtransport"), // left out
	}
	code, err := EncodeInvite(pub, secret, addrs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("invite code (%d characters): %s", len(code), code)
	inv, err := DecodeInvite(strings.ToUpper(code) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if inv.Secret != secret {
		t.Fatal("secret changed")
	}
	if !inv.Peer.MatchesPublicKey(pub) {
		t.Fatal("peer ID changed")
	}
	if len(inv.Addrs) != 4 {
		t.Fatalf("got %d addresses, want 4: %v", len(inv.Addrs), inv.Addrs)
	}
	for i, a := range inv.Addrs {
		if !a.Equal(addrs[i]) {
			t.Errorf("address %d: got %s, want %s", i, a, addrs[i])
		}
	}
}

func TestInviteTypoDetected(t *testing.T) {
	var secret [secretSize]byte
	code, err := EncodeInvite(testKey(t), secret, []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(code) {
		if code[i] == '-' {
			continue
		}
		b := []byte(code)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		if _, err := DecodeInvite(string(b)); !errors.Is(err, ErrBadInvite) {
			t.Fatalf("typo at %d not detected: %v", i, err)
		}
	}
}

func TestShortInvite(t *testing.T) {
	id, err := peer.IDFromPublicKey(testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	var secret [secretSize]byte
	copy(secret[:], "abcdefghij")
	code := EncodeShortInvite(id, secret)
	t.Logf("short invite code (%d characters): %s", len(code), code)
	if len(code) > 45 {
		t.Fatalf("short code is %d characters", len(code))
	}
	inv, err := DecodeInvite(code)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Peer != "" || !bytes.Equal(inv.IDHash, idHash(id)) || inv.Secret != secret {
		t.Fatalf("decoded: %+v", inv)
	}
}

func FuzzDecodeInvite(f *testing.F) {
	var secret [secretSize]byte
	_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
	code, _ := EncodeInvite(pub, secret, []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/tcp/1"), ma.StringCast("/ip6/::1/udp/2/quic-v1"),
	})
	f.Add(code)
	f.Add(EncodeShortInvite("x", secret))
	f.Add("")
	f.Add("aaaa-bbbb")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := DecodeInvite(s)
		if err != nil {
			if !errors.Is(err, ErrBadInvite) {
				t.Fatalf("error not ErrBadInvite: %v", err)
			}
			return
		}
		if inv.Peer == "" {
			if len(inv.IDHash) != idHashSize {
				t.Fatalf("short code with a %d-byte hash", len(inv.IDHash))
			}
			return
		}
		// A code that decodes re-encodes to the same invite.
		pk, err := inv.Peer.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		again, err := EncodeInvite(pk, inv.Secret, inv.Addrs)
		if err != nil {
			t.Fatal(err)
		}
		inv2, err := DecodeInvite(again)
		if err != nil || inv2.Peer != inv.Peer || inv2.Secret != inv.Secret || len(inv2.Addrs) != len(inv.Addrs) {
			t.Fatalf("re-encoded invite differs: %v", err)
		}
	})
}

func FuzzPairMessages(f *testing.F) {
	var buf bytes.Buffer
	_ = writeMsg(&buf, &pairHello{Version: 1, Tag: make([]byte, tagSize), Nonce: make([]byte, nonceSize)})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = writeMsg(&buf, &pairProof{MAC: make([]byte, 32), Info: status{Name: "x", OwnerID: "o", OfferBytes: 5}})
	f.Add(buf.Bytes())
	buf.Reset()
	_ = writeMsg(&buf, &pairChallenge{Error: "no"})
	f.Add(buf.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h pairHello
		_ = readMsg(bytes.NewReader(b), &h)
		var c pairChallenge
		_ = readMsg(bytes.NewReader(b), &c)
		var p pairProof
		if readMsg(bytes.NewReader(b), &p) == nil {
			_ = p.Info.check()
		}
		var s status
		if readMsg(bytes.NewReader(b), &s) == nil {
			_ = s.check()
		}
	})
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in    string
		bytes int64
		pct   float64
		bad   bool
	}{
		{"50GB", 50e9, 0, false},
		{"800MiB", 800 << 20, 0, false},
		{"1.5 TB", 1.5e12, 0, false},
		{"1234", 1234, 0, false},
		{"10%", 0, 10, false},
		{"0", 0, 0, false},
		{"150%", 0, 0, true},
		{"-5GB", 0, 0, true},
		{"5XB", 0, 0, true},
		{"GB", 0, 0, true},
		{"99999999999TB", 0, 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			b, p, err := ParseSize(tc.in)
			if (err != nil) != tc.bad {
				t.Fatalf("err = %v, want error %v", err, tc.bad)
			}
			if !tc.bad && (b != tc.bytes || p != tc.pct) {
				t.Fatalf("got %d bytes %v%%, want %d %v%%", b, p, tc.bytes, tc.pct)
			}
		})
	}
}
