package crypto

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// NodeCert is the owner's statement that a node (a libp2p peer ID) acts for
// it until Expires. Hosts accept an ownership proof signed by a certified
// node key as if the owner had signed it, so a daemon can fetch, renew and
// audit without the owner's passphrase at hand.
type NodeCert struct {
	OwnerPub ed25519.PublicKey `json:"owner_pub"`
	NodeID   string            `json:"node_id"` // libp2p peer ID, string form
	Issued   time.Time         `json:"issued"`
	Expires  time.Time         `json:"expires"`
	Sig      []byte            `json:"sig"`
}

const nodeCertDomain = "cairn node cert v1"

func (c *NodeCert) message() []byte {
	return fmt.Appendf(nil, "%x|%s|%d|%d", []byte(c.OwnerPub), c.NodeID, c.Issued.Unix(), c.Expires.Unix())
}

// IssueNodeCert signs a certificate for nodeID valid for the given duration.
func (k *Keys) IssueNodeCert(nodeID string, now time.Time, valid time.Duration) *NodeCert {
	c := &NodeCert{
		OwnerPub: k.OwnerPublic(),
		NodeID:   nodeID,
		Issued:   now.UTC().Truncate(time.Second),
		Expires:  now.Add(valid).UTC().Truncate(time.Second),
	}
	c.Sig = k.Sign(nodeCertDomain, c.message())
	return c
}

// OwnerID returns the ID of the owner that issued the certificate.
func (c *NodeCert) OwnerID() string { return OwnerID(c.OwnerPub) }

// Verify checks the signature, that the certificate names nodeID, and that
// it is valid at now.
func (c *NodeCert) Verify(nodeID string, now time.Time) error {
	if len(c.OwnerPub) != ed25519.PublicKeySize {
		return errors.New("node certificate: bad owner key")
	}
	if c.NodeID != nodeID {
		return errors.New("node certificate: issued for another node")
	}
	if now.Before(c.Issued.Add(-5*time.Minute)) || now.After(c.Expires) {
		return errors.New("node certificate: expired or not yet valid")
	}
	if !Verify(c.OwnerPub, nodeCertDomain, c.message(), c.Sig) {
		return errors.New("node certificate: bad signature")
	}
	return nil
}

// MarshalNodeCert encodes a certificate as JSON.
func MarshalNodeCert(c *NodeCert) ([]byte, error) { return json.Marshal(c) }

// ParseNodeCert decodes a certificate; it does not verify it.
func ParseNodeCert(b []byte) (*NodeCert, error) {
	if len(b) > 4096 {
		return nil, errors.New("node certificate too large")
	}
	var c NodeCert
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("parse node certificate: %w", err)
	}
	return &c, nil
}
