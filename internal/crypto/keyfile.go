package crypto

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrWrongPassphrase is returned when a passphrase opens no key file.
var ErrWrongPassphrase = errors.New("wrong passphrase")

// KDFParams are Argon2id cost parameters.
type KDFParams struct {
	Time    uint32 `json:"time"`
	Memory  uint32 `json:"memory_kib"`
	Threads uint8  `json:"threads"`
}

// DefaultKDF costs about a quarter of a second and 40 MiB on a current
// machine. Four passes over 40 MiB cost an attacker about what RFC 9106's
// second recommendation (three over 64 MiB) does, well above OWASP's
// minimums, while keeping the memory a backup needs at its peak — the KDF
// runs first — below restic's.
var DefaultKDF = KDFParams{Time: 4, Memory: 40 * 1024, Threads: 4}

// Validate refuses parameters that are too weak to protect anything, or so
// large that reading a hostile key file would exhaust the machine.
func (p KDFParams) Validate() error {
	switch {
	case p.Time < 1 || p.Time > 64:
		return fmt.Errorf("kdf time %d out of range 1..64", p.Time)
	case p.Memory < 8 || p.Memory > 4*1024*1024:
		return fmt.Errorf("kdf memory %d KiB out of range 8..4194304", p.Memory)
	case p.Threads < 1:
		return fmt.Errorf("kdf threads must be at least 1")
	}
	return nil
}

// KeyFileVersion is the version of the key file format.
const KeyFileVersion = 1

// KeyFile wraps the master key under a passphrase. It is stored as JSON.
type KeyFile struct {
	Version  int       `json:"version"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host,omitempty"`
	Username string    `json:"username,omitempty"`
	KDF      string    `json:"kdf"`
	Params   KDFParams `json:"params"`
	Salt     []byte    `json:"salt"`
	// Data is XChaCha20-Poly1305(argon2id(passphrase, salt), master key),
	// nonce first, with the header fields above as additional data.
	Data []byte `json:"data"`
}

func (kf *KeyFile) ad() []byte {
	return fmt.Appendf(nil, "cairn keyfile v%d %s %d %d %d", kf.Version, kf.KDF, kf.Params.Time, kf.Params.Memory, kf.Params.Threads)
}

func wrapKey(pass []byte, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(pass, salt, p.Time, p.Memory, p.Threads, chacha20poly1305.KeySize)
}

// NewKeyFile wraps master under passphrase.
func NewKeyFile(master MasterKey, passphrase []byte, p KDFParams, host, user string, now time.Time) (*KeyFile, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	kf := &KeyFile{
		Version: KeyFileVersion, Created: now.UTC(), Host: host, Username: user,
		KDF: "argon2id", Params: p, Salt: make([]byte, 16),
	}
	if _, err := io.ReadFull(rand.Reader, kf.Salt); err != nil {
		return nil, fmt.Errorf("generate salt: %w", err)
	}
	wk := wrapKey(passphrase, kf.Salt, p)
	a, err := chacha20poly1305.NewX(wk)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("generate nonce: %w", err)
	}
	kf.Data = a.Seal(nonce, nonce, master[:], kf.ad())
	return kf, nil
}

// Open unwraps the master key. A wrong passphrase yields ErrWrongPassphrase.
func (kf *KeyFile) Open(passphrase []byte) (MasterKey, error) {
	var mk MasterKey
	if kf.Version != KeyFileVersion {
		return mk, fmt.Errorf("key file version %d is not supported (this cairn reads version %d)", kf.Version, KeyFileVersion)
	}
	if kf.KDF != "argon2id" {
		return mk, fmt.Errorf("key file uses unknown kdf %q", kf.KDF)
	}
	if err := kf.Params.Validate(); err != nil {
		return mk, fmt.Errorf("key file: %w", err)
	}
	if len(kf.Salt) < 16 || len(kf.Salt) > 64 {
		return mk, errors.New("key file: bad salt length")
	}
	if len(kf.Data) != chacha20poly1305.NonceSizeX+KeySize+chacha20poly1305.Overhead {
		return mk, errors.New("key file: bad data length")
	}
	wk := wrapKey(passphrase, kf.Salt, kf.Params)
	a, err := chacha20poly1305.NewX(wk)
	if err != nil {
		return mk, err
	}
	ns := chacha20poly1305.NonceSizeX
	pt, err := a.Open(nil, kf.Data[:ns], kf.Data[ns:], kf.ad())
	if err != nil {
		return mk, ErrWrongPassphrase
	}
	copy(mk[:], pt)
	subtle.XORBytes(pt, pt, pt) // wipe the copy
	return mk, nil
}

// ParseKeyFile decodes a stored key file.
func ParseKeyFile(b []byte) (*KeyFile, error) {
	if len(b) > 64<<10 {
		return nil, errors.New("key file too large")
	}
	var kf KeyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("parse key file: %w", err)
	}
	return &kf, nil
}

// Marshal encodes a key file for storage.
func (kf *KeyFile) Marshal() ([]byte, error) { return json.MarshalIndent(kf, "", "  ") }
