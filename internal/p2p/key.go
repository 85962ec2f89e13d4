package p2p

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	ccrypto "github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// LoadOrCreateKey returns the node's libp2p key, kept at path (mode 0600),
// creating a fresh Ed25519 key on first use.
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) > 4096 {
			return nil, fmt.Errorf("load node key %s: file too large", path)
		}
		k, err := crypto.UnmarshalPrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("load node key %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load node key: %w", err)
	}
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	b, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode node key: %w", err)
	}
	if err := home.WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("save node key: %w", err)
	}
	return k, nil
}

// NodeID returns the peer ID of the home's node, creating its key if needed.
func NodeID(h home.Home) (peer.ID, error) {
	k, err := LoadOrCreateKey(h.NodeKeyPath())
	if err != nil {
		return "", err
	}
	return peer.IDFromPrivateKey(k)
}

// NodeCertValidity is how long a node certificate issued by IssueNodeCert
// stays valid; the owner reissues it whenever the repository is unlocked.
const NodeCertValidity = 365 * 24 * time.Hour

// IssueNodeCert has the owner (keys) certify the home's node: it loads or
// creates the node key and writes the certificate to home.NodeCertPath.
// A running node picks the new certificate up on its next status exchange.
func IssueNodeCert(h home.Home, keys *ccrypto.Keys) error {
	if err := h.Ensure(); err != nil {
		return err
	}
	id, err := NodeID(h)
	if err != nil {
		return err
	}
	c := keys.IssueNodeCert(id.String(), time.Now(), NodeCertValidity)
	b, err := ccrypto.MarshalNodeCert(c)
	if err != nil {
		return fmt.Errorf("issue node certificate: %w", err)
	}
	if err := home.WriteFileAtomic(h.NodeCertPath(), b, 0o600); err != nil {
		return fmt.Errorf("issue node certificate: %w", err)
	}
	return nil
}

// Owner is what owner.json holds: the owner's ID and public key, no secret.
type Owner struct {
	ID  string `json:"owner_id"`
	Pub string `json:"owner_pub"` // base64
}

// ReadOwner returns the home's owner, or the zero Owner when the home has
// none yet (owner.json is written when a repository is set up). Without
// owner.json, the owner named by a valid node certificate is used.
func ReadOwner(h home.Home) (Owner, error) {
	b, err := os.ReadFile(h.OwnerPath())
	if errors.Is(err, os.ErrNotExist) {
		return ownerFromCert(h), nil
	}
	if err != nil {
		return Owner{}, fmt.Errorf("read owner: %w", err)
	}
	if len(b) > 64<<10 {
		return Owner{}, errors.New("read owner: file too large")
	}
	var o Owner
	if err := json.Unmarshal(b, &o); err != nil {
		return Owner{}, fmt.Errorf("read owner %s: %w", h.OwnerPath(), err)
	}
	return o, nil
}

func ownerFromCert(h home.Home) Owner {
	b, err := os.ReadFile(h.NodeCertPath())
	if err != nil {
		return Owner{}
	}
	c, err := ccrypto.ParseNodeCert(b)
	if err != nil {
		return Owner{}
	}
	id, err := NodeID(h)
	if err != nil || c.Verify(id.String(), time.Now()) != nil {
		return Owner{}
	}
	return Owner{ID: c.OwnerID(), Pub: base64.StdEncoding.EncodeToString(c.OwnerPub)}
}

// readCert returns the node certificate's bytes, or nil without one.
func readCert(h home.Home) []byte {
	b, err := os.ReadFile(h.NodeCertPath())
	if err != nil || len(b) > 4096 {
		return nil
	}
	return b
}
