package crypto

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
)

// The recovery code is the master key written for people: Crockford base32
// of the 32 key bytes and a 4-byte checksum, in groups of five characters.
// It is case-insensitive, ignores spaces and dashes, and reads the letters
// people confuse with digits (I, L as 1; O as 0) the way they meant them.

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ErrBadRecoveryCode is returned for a recovery code that does not decode or
// whose checksum does not match (a typo).
var ErrBadRecoveryCode = errors.New("invalid recovery code (check for typos)")

func recoveryChecksum(k MasterKey) []byte {
	s := sha256.Sum256(append([]byte("cairn recovery code v1\x00"), k[:]...))
	return s[:4]
}

// RecoveryCode encodes the master key.
func (k *Keys) RecoveryCode() string { return EncodeRecoveryCode(k.master) }

// EncodeRecoveryCode encodes a master key as a recovery code.
func EncodeRecoveryCode(k MasterKey) string {
	raw := append(append([]byte{}, k[:]...), recoveryChecksum(k)...)
	var sb strings.Builder
	var acc uint64
	bits := 0
	n := 0
	emit := func(v uint64) {
		if n > 0 && n%5 == 0 {
			sb.WriteByte('-')
		}
		sb.WriteByte(crockford[v&31])
		n++
	}
	for _, b := range raw {
		acc = acc<<8 | uint64(b)
		bits += 8
		for bits >= 5 {
			emit(acc >> (bits - 5))
			bits -= 5
		}
	}
	if bits > 0 {
		emit(acc << (5 - bits))
	}
	return sb.String()
}

// ParseRecoveryCode decodes a recovery code.
func ParseRecoveryCode(code string) (MasterKey, error) {
	var mk MasterKey
	var raw []byte
	var acc uint64
	bits := 0
	for _, r := range strings.ToUpper(code) {
		switch r {
		case '-', ' ', '\t', '\n', '\r':
			continue
		case 'I', 'L':
			r = '1'
		case 'O':
			r = '0'
		}
		v := strings.IndexRune(crockford, r)
		if v < 0 {
			return mk, ErrBadRecoveryCode
		}
		acc = acc<<5 | uint64(v)
		bits += 5
		if bits >= 8 {
			raw = append(raw, byte(acc>>(bits-8)))
			bits -= 8
		}
		if len(raw) > KeySize+4 {
			return mk, ErrBadRecoveryCode
		}
	}
	if len(raw) != KeySize+4 {
		return mk, ErrBadRecoveryCode
	}
	copy(mk[:], raw)
	if subtle.ConstantTimeCompare(recoveryChecksum(mk), raw[KeySize:]) != 1 {
		return MasterKey{}, ErrBadRecoveryCode
	}
	return mk, nil
}
