// Package crypto holds cairn's keys and the primitives built on them: the
// master key and its subkeys, authenticated encryption, keyed blob IDs,
// passphrase-wrapped key files, the recovery code and owner signatures.
//
// Everything here uses well-reviewed primitives: XChaCha20-Poly1305 for
// encryption (192-bit random nonces, so nonce reuse is not a practical
// concern however many blobs a repository holds), keyed BLAKE3 for blob IDs,
// HKDF-SHA256 for subkeys, Argon2id for passphrases, Ed25519 for signatures.
// See docs/crypto.md.
package crypto

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/zeebo/blake3"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// KeySize is the size of the master key and of every symmetric subkey.
const KeySize = 32

// Overhead is what Seal adds to a plaintext: the nonce and the tag.
const Overhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// ErrAuth is returned when a ciphertext fails authentication: it was
// damaged, truncated, swapped for another, or made under another key.
var ErrAuth = errors.New("ciphertext authentication failed")

// MasterKey is the root secret of an owner. Everything else derives from it.
type MasterKey [KeySize]byte

// NewMasterKey returns a fresh random master key.
func NewMasterKey() (MasterKey, error) {
	var k MasterKey
	if _, err := io.ReadFull(rand.Reader, k[:]); err != nil {
		return k, fmt.Errorf("generate master key: %w", err)
	}
	return k, nil
}

// Keys are the subkeys of a master key.
type Keys struct {
	master  MasterKey
	aead    aeadCipher
	blobKey [KeySize]byte
	owner   ed25519.PrivateKey
}

type aeadCipher interface {
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

// Subkey labels. Changing one changes the format: they are part of it.
const (
	labelData  = "cairn v1 data key"
	labelBlob  = "cairn v1 blob id key"
	labelOwner = "cairn v1 owner signing key"
)

func derive(master MasterKey, label string) [KeySize]byte {
	var out [KeySize]byte
	r := hkdf.New(sha256.New, master[:], nil, []byte(label))
	if _, err := io.ReadFull(r, out[:]); err != nil {
		panic("hkdf: " + err.Error()) // cannot happen for 32 bytes
	}
	return out
}

// Derive computes the subkeys of a master key.
func Derive(master MasterKey) *Keys {
	dk := derive(master, labelData)
	a, err := chacha20poly1305.NewX(dk[:])
	if err != nil {
		panic("xchacha20poly1305: " + err.Error()) // key size is fixed
	}
	os := derive(master, labelOwner)
	return &Keys{
		master:  master,
		aead:    a,
		blobKey: derive(master, labelBlob),
		owner:   ed25519.NewKeyFromSeed(os[:]),
	}
}

// Master returns the master key.
func (k *Keys) Master() MasterKey { return k.master }

// Seal encrypts and authenticates plaintext, binding ad, and appends
// nonce || ciphertext || tag to dst.
func (k *Keys) Seal(dst, plaintext, ad []byte) []byte {
	var nonce [chacha20poly1305.NonceSizeX]byte
	if _, err := io.ReadFull(rand.Reader, nonce[:]); err != nil {
		panic("crypto/rand: " + err.Error()) // the kernel's RNG does not fail
	}
	dst = append(dst, nonce[:]...)
	return k.aead.Seal(dst, nonce[:], plaintext, ad)
}

// Open checks and decrypts a ciphertext made by Seal with the same ad,
// appending the plaintext to dst.
func (k *Keys) Open(dst, ciphertext, ad []byte) ([]byte, error) {
	if len(ciphertext) < Overhead {
		return nil, ErrAuth
	}
	ns := chacha20poly1305.NonceSizeX
	out, err := k.aead.Open(dst, ciphertext[:ns], ciphertext[ns:], ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}

// BlobHasher returns a fresh keyed hash for blob IDs. The key means that
// someone holding the repository cannot test whether it contains a file
// they know.
func (k *Keys) BlobHasher() *blake3.Hasher {
	h, err := blake3.NewKeyed(k.blobKey[:])
	if err != nil {
		panic("blake3: " + err.Error()) // key size is fixed
	}
	return h
}

// BlobID returns the keyed ID of a blob's plaintext.
func (k *Keys) BlobID(data []byte) ID {
	h := k.BlobHasher()
	_, _ = h.Write(data)
	var id ID
	h.Sum(id[:0])
	return id
}

// OwnerKey returns the owner's Ed25519 signing key.
func (k *Keys) OwnerKey() ed25519.PrivateKey { return k.owner }

// OwnerPublic returns the owner's public key.
func (k *Keys) OwnerPublic() ed25519.PublicKey { return k.owner.Public().(ed25519.PublicKey) }

// OwnerID returns the owner ID of these keys.
func (k *Keys) OwnerID() string { return OwnerID(k.OwnerPublic()) }

// Sign signs msg with the owner key under a domain label, so a signature
// made for one purpose is never valid for another.
func (k *Keys) Sign(domain string, msg []byte) []byte {
	return ed25519.Sign(k.owner, domainMessage(domain, msg))
}

// Verify checks an owner signature made by Sign.
func Verify(pub ed25519.PublicKey, domain string, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(pub, domainMessage(domain, msg), sig)
}

func domainMessage(domain string, msg []byte) []byte {
	b := make([]byte, 0, len(domain)+1+len(msg))
	b = append(b, domain...)
	b = append(b, 0)
	return append(b, msg...)
}

// OwnerID is the lowercase hex SHA-256 of an owner public key: 64 characters.
func OwnerID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// MAC returns HMAC-SHA256 of msg under a key derived from the master key
// for the given purpose. Used for values that must not leak (e.g. cache keys).
func (k *Keys) MAC(purpose string, msg []byte) []byte {
	key := derive(k.master, "cairn v1 mac "+purpose)
	m := hmac.New(sha256.New, key[:])
	m.Write(msg)
	return m.Sum(nil)
}
