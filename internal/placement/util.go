package placement

import (
	"bytes"
	"io"

	"github.com/cairn-backup/cairn/internal/wire"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

func merkleRoot(b []byte) [32]byte { return wire.MerkleRoot(b) }
