package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// FormatVersion is the repository format this code writes and reads.
const FormatVersion = 1

// configMagic starts the config object, followed by one version byte, so a
// reader can refuse a newer format before it tries any key.
var configMagic = []byte("CAIRNCFG")

// Config is the repository's configuration, stored encrypted.
type Config struct {
	Version     int    `json:"version"`
	ID          string `json:"id"`
	ChunkerSeed uint64 `json:"chunker_seed"`
	ChunkMin    int    `json:"chunk_min"`
	ChunkAvg    int    `json:"chunk_avg"`
	ChunkMax    int    `json:"chunk_max"`
	PackSize    int    `json:"pack_size"`
	// OwnerID identifies the owner; hosts see it too.
	OwnerID string `json:"owner_id"`
}

// DefaultPackSize is the target size of a pack.
const DefaultPackSize = 16 << 20

func newConfig(keys *crypto.Keys) (Config, error) {
	var b [24]byte
	if _, err := io.ReadFull(rand.Reader, b[:]); err != nil {
		return Config{}, fmt.Errorf("generate repository id: %w", err)
	}
	return Config{
		Version:     FormatVersion,
		ID:          hex.EncodeToString(b[:16]),
		ChunkerSeed: binary.LittleEndian.Uint64(b[16:]),
		ChunkMin:    256 << 10,
		ChunkAvg:    1 << 20,
		ChunkMax:    4 << 20,
		PackSize:    DefaultPackSize,
		OwnerID:     keys.OwnerID(),
	}, nil
}

var adConfig = []byte("cairn config v1")

func encodeConfig(keys *crypto.Keys, c Config) ([]byte, error) {
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	out := append([]byte{}, configMagic...)
	out = append(out, FormatVersion)
	return keys.Seal(out, js, adConfig), nil
}

// configVersion checks the plaintext header of a stored config.
func configVersion(b []byte) (int, error) {
	if len(b) < len(configMagic)+1 || !bytes.Equal(b[:len(configMagic)], configMagic) {
		return 0, fmt.Errorf("config: %w: not a cairn config", ErrCorrupt)
	}
	return int(b[len(configMagic)]), nil
}

func decodeConfig(keys *crypto.Keys, b []byte) (Config, error) {
	v, err := configVersion(b)
	if err != nil {
		return Config{}, err
	}
	if v != FormatVersion {
		return Config{}, fmt.Errorf("%w: repository is version %d, this cairn reads version %d", ErrVersion, v, FormatVersion)
	}
	pt, err := keys.Open(nil, b[len(configMagic)+1:], adConfig)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(pt, &c); err != nil {
		return Config{}, fmt.Errorf("config: %w: %v", ErrCorrupt, err)
	}
	if c.Version != FormatVersion {
		return Config{}, fmt.Errorf("%w: config says version %d", ErrVersion, c.Version)
	}
	if c.ChunkMin <= 0 || c.ChunkMin > c.ChunkAvg || c.ChunkAvg > c.ChunkMax || c.ChunkMax > 64<<20 {
		return Config{}, fmt.Errorf("config: %w: bad chunker parameters", ErrCorrupt)
	}
	if c.PackSize < 1<<20 || c.PackSize > 1<<30 {
		return Config{}, fmt.Errorf("config: %w: bad pack size", ErrCorrupt)
	}
	return c, nil
}

func loadConfigBytes(ctx context.Context, s store.Reader) ([]byte, error) {
	b, err := store.ReadAll(ctx, s, store.Handle{Type: store.Config, Name: store.ConfigName})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNoRepository
		}
		return nil, fmt.Errorf("read config: %w", err)
	}
	if _, err := configVersion(b); err != nil {
		return nil, err
	}
	return b, nil
}
