package p2p

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net/netip"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// An invite code is what `cairn peers invite` prints and `cairn peers join`
// reads: the inviter's node key, a one-time secret and a few of its
// addresses, in lowercase base32 without padding, grouped by dashes for
// people. Layout (docs/network.md):
//
//	version   1 byte  (1)
//	node key 32 bytes (Ed25519 public key: the peer ID)
//	secret   10 bytes (random; never sent on the wire, only HMACs of it)
//	count     1 byte  (addresses that follow, at most maxInviteAddrs)
//	address   kind 1 byte, IP 4 or 16 bytes, port 2 bytes (big endian)
//	crc32     4 bytes (IEEE, over all of the above: catches typos)
//
// A short code (version 2) has no key and no addresses, only the first 8
// bytes of SHA-256 of the inviter's peer ID and the secret: the joiner finds
// the inviter by mDNS on the LAN or by a DHT provider record (InviteKey).
//
//	version   1 byte  (2)
//	id hash   8 bytes
//	secret   10 bytes
//	crc32     4 bytes
const (
	inviteVersion  = 1
	shortVersion   = 2
	idHashSize     = 8
	secretSize     = 10
	maxInviteAddrs = 6
	maxInviteCode  = 512 // characters, dashes included
)

// Address kinds in an invite code.
const (
	addrTCP4  = 1
	addrQUIC4 = 2
	addrTCP6  = 3
	addrQUIC6 = 4
)

// ErrBadInvite is returned for an invite code that cannot be decoded:
// mistyped, truncated or not an invite code at all.
var ErrBadInvite = errors.New("not a valid invite code")

var inviteEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Invite is a decoded invite code.
type Invite struct {
	// Peer is the inviter; empty in a short code, which has IDHash instead.
	Peer   peer.ID
	IDHash []byte
	Secret [secretSize]byte
	Addrs  []ma.Multiaddr
}

// AddrInfo returns where to dial the inviter.
func (inv *Invite) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: inv.Peer, Addrs: inv.Addrs}
}

// EncodeInvite builds the invite code for a node key, a secret and the
// node's addresses. Addresses that are not plain IP+TCP or IP+UDP+QUIC are
// left out, and at most maxInviteAddrs are kept.
func EncodeInvite(pub crypto.PubKey, secret [secretSize]byte, addrs []ma.Multiaddr) (string, error) {
	raw, err := pub.Raw()
	if err != nil || pub.Type() != crypto.Ed25519 || len(raw) != ed25519.PublicKeySize {
		return "", errors.New("encode invite: node key is not Ed25519")
	}
	b := []byte{inviteVersion}
	b = append(b, raw...)
	b = append(b, secret[:]...)
	var packed [][]byte
	for _, a := range addrs {
		if p, ok := packAddr(a); ok && len(packed) < maxInviteAddrs {
			packed = append(packed, p)
		}
	}
	b = append(b, byte(len(packed)))
	for _, p := range packed {
		b = append(b, p...)
	}
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return groupCode(b), nil
}

// idHash is what a short code holds of the inviter's peer ID.
func idHash(id peer.ID) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:idHashSize]
}

// EncodeShortInvite builds a short invite code (no key, no addresses).
func EncodeShortInvite(id peer.ID, secret [secretSize]byte) string {
	b := []byte{shortVersion}
	b = append(b, idHash(id)...)
	b = append(b, secret[:]...)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	return groupCode(b)
}

func groupCode(b []byte) string {
	s := strings.ToLower(inviteEncoding.EncodeToString(b))
	var sb strings.Builder
	for i := 0; i < len(s); i += 5 {
		if i > 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(s[i:min(i+5, len(s))])
	}
	return sb.String()
}

// DecodeInvite parses an invite code. Dashes, spaces and case are ignored.
func DecodeInvite(code string) (*Invite, error) {
	if len(code) > maxInviteCode {
		return nil, fmt.Errorf("%w: too long", ErrBadInvite)
	}
	clean := strings.Map(func(r rune) rune {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, strings.ToUpper(code))
	b, err := inviteEncoding.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInvite, err)
	}
	if len(b) < 1+idHashSize+secretSize+4 {
		return nil, fmt.Errorf("%w: too short", ErrBadInvite)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (mistyped?)", ErrBadInvite)
	}
	if body[0] == shortVersion {
		if len(body) != 1+idHashSize+secretSize {
			return nil, fmt.Errorf("%w: wrong length", ErrBadInvite)
		}
		inv := &Invite{IDHash: bytes.Clone(body[1 : 1+idHashSize])}
		copy(inv.Secret[:], body[1+idHashSize:])
		return inv, nil
	}
	if len(body) < 1+32+secretSize+1 {
		return nil, fmt.Errorf("%w: too short", ErrBadInvite)
	}
	if body[0] != inviteVersion {
		return nil, fmt.Errorf("%w: version %d not supported", ErrBadInvite, body[0])
	}
	pub, err := crypto.UnmarshalEd25519PublicKey(body[1:33])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInvite, err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInvite, err)
	}
	inv := &Invite{Peer: id}
	copy(inv.Secret[:], body[33:33+secretSize])
	rest := body[33+secretSize:]
	n := int(rest[0])
	rest = rest[1:]
	if n > maxInviteAddrs {
		return nil, fmt.Errorf("%w: too many addresses", ErrBadInvite)
	}
	for range n {
		a, used, err := unpackAddr(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadInvite, err)
		}
		inv.Addrs = append(inv.Addrs, a)
		rest = rest[used:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: trailing bytes", ErrBadInvite)
	}
	return inv, nil
}

// packAddr packs /ip4|ip6/X/tcp/P and /ip4|ip6/X/udp/P/quic-v1.
func packAddr(a ma.Multiaddr) ([]byte, bool) {
	var ip netip.Addr
	var port uint16
	var tcp, quic bool
	n := 0
	for _, c := range a {
		n++
		switch c.Protocol().Code {
		case ma.P_IP4, ma.P_IP6:
			if n != 1 {
				return nil, false
			}
			v, ok := netip.AddrFromSlice(c.RawValue())
			if !ok {
				return nil, false
			}
			ip = v
		case ma.P_TCP, ma.P_UDP:
			if n != 2 || len(c.RawValue()) != 2 {
				return nil, false
			}
			port = binary.BigEndian.Uint16(c.RawValue())
			tcp = c.Protocol().Code == ma.P_TCP
		case ma.P_QUIC_V1:
			if n != 3 || tcp {
				return nil, false
			}
			quic = true
		case ma.P_P2P:
			n-- // a trailing /p2p/ID is implied by the key
		default:
			return nil, false
		}
	}
	if !ip.IsValid() || (!tcp && !quic) || (tcp && n != 2) || (quic && n != 3) {
		return nil, false
	}
	var kind byte
	switch {
	case ip.Is4() && tcp:
		kind = addrTCP4
	case ip.Is4():
		kind = addrQUIC4
	case tcp:
		kind = addrTCP6
	default:
		kind = addrQUIC6
	}
	out := []byte{kind}
	out = append(out, ip.AsSlice()...)
	return binary.BigEndian.AppendUint16(out, port), true
}

func unpackAddr(b []byte) (ma.Multiaddr, int, error) {
	if len(b) < 1 {
		return nil, 0, errors.New("truncated address")
	}
	var size int
	var v4 bool
	switch b[0] {
	case addrTCP4, addrQUIC4:
		size, v4 = 4, true
	case addrTCP6, addrQUIC6:
		size = 16
	default:
		return nil, 0, fmt.Errorf("unknown address kind %d", b[0])
	}
	if len(b) < 1+size+2 {
		return nil, 0, errors.New("truncated address")
	}
	ip, _ := netip.AddrFromSlice(b[1 : 1+size])
	if v4 {
		ip = ip.Unmap()
	}
	port := binary.BigEndian.Uint16(b[1+size:])
	ipProto := "ip6"
	if v4 {
		ipProto = "ip4"
	}
	var s string
	switch b[0] {
	case addrTCP4, addrTCP6:
		s = fmt.Sprintf("/%s/%s/tcp/%d", ipProto, ip, port)
	default:
		s = fmt.Sprintf("/%s/%s/udp/%d/quic-v1", ipProto, ip, port)
	}
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, 0, fmt.Errorf("address: %w", err)
	}
	return a, 1 + size + 2, nil
}
