package repo

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
)

var adMeta = []byte("cairn meta v1")

// HostList is the owner's list of the nodes that keep its data, kept
// encrypted on every one of them so that one surviving host is enough to
// find the others after a disaster.
type HostList struct {
	Version int        `json:"version"`
	Updated time.Time  `json:"updated"`
	Hosts   []HostInfo `json:"hosts"`
}

// HostInfo is one host in the list.
type HostInfo struct {
	NodeID string   `json:"node_id"`
	Name   string   `json:"name,omitempty"`
	Addrs  []string `json:"addrs,omitempty"`
}

// SealHostList encrypts a host list for storage on hosts.
func SealHostList(keys *crypto.Keys, l *HostList) ([]byte, error) {
	l.Version = 1
	js, err := json.Marshal(l)
	if err != nil {
		return nil, err
	}
	return keys.Seal(nil, js, adMeta), nil
}

// OpenHostList decrypts a host list.
func OpenHostList(keys *crypto.Keys, b []byte) (*HostList, error) {
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("host list: %w: too large", ErrCorrupt)
	}
	pt, err := keys.Open(nil, b, adMeta)
	if err != nil {
		return nil, fmt.Errorf("host list: %w", ErrCorrupt)
	}
	var l HostList
	if err := json.Unmarshal(pt, &l); err != nil || l.Version != 1 {
		return nil, fmt.Errorf("host list: %w", ErrCorrupt)
	}
	return &l, nil
}
