// Package api holds the types of the daemon's HTTP JSON API, the API key
// and daemon file kept in the home, the authentication middleware, and the
// client the CLI uses to talk to a running daemon.
//
// The API listens on 127.0.0.1 only. Every request carries the home's API
// key as "Authorization: Bearer <key>"; the key file is readable by the
// home's owner only. Paths are versioned under /v1/.
package api

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/cairn-backup/cairn/internal/home"
)

// Paths of the API.
const (
	PathHealth  = "/v1/health"
	PathID      = "/v1/id"
	PathPeers   = "/v1/peers"
	PathInvite  = "/v1/peers/invite"
	PathJoin    = "/v1/peers/join"
	PathAdd     = "/v1/peers/add"
	PathRemove  = "/v1/peers/remove"
	PathBlock   = "/v1/peers/block"
	PathName    = "/v1/peers/name"
	PathOffer   = "/v1/offer"
	PathConnect = "/v1/peers/connect"
)

// ID is the answer of GET /v1/id.
type ID struct {
	NodeID  string   `json:"node_id"`
	OwnerID string   `json:"owner_id,omitempty"`
	Addrs   []string `json:"addrs"`
}

// Peer is one row of GET /v1/peers.
type Peer struct {
	NodeID      string    `json:"node_id"`
	Name        string    `json:"name"`
	OwnerID     string    `json:"owner_id"`
	Addrs       []string  `json:"addrs"`
	LAN         bool      `json:"lan"`
	Connected   bool      `json:"connected"`
	LastSeen    time.Time `json:"last_seen"`
	RTTMillis   float64   `json:"rtt_ms"`
	OfferBytes  int64     `json:"offer_bytes"`
	FreeBytes   int64     `json:"free_bytes"`
	Trust       string    `json:"trust"`
	QuotaBytes  int64     `json:"quota_bytes"`
	HeldForThem int64     `json:"held_for_them"`
	HeldByThem  int64     `json:"held_by_them"`
}

// InviteRequest is the body of POST /v1/peers/invite.
type InviteRequest struct {
	TTLSeconds int64 `json:"ttl_seconds,omitempty"`
	// Short asks for a short code without addresses: the joiner finds the
	// inviter on its LAN (mDNS) or through friends' DHT.
	Short bool `json:"short,omitempty"`
}

// Invite is the answer of POST /v1/peers/invite.
type Invite struct {
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// JoinRequest is the body of POST /v1/peers/join.
type JoinRequest struct {
	Code string `json:"code"`
}

// AddRequest is the body of POST /v1/peers/add.
type AddRequest struct {
	Addr string `json:"addr"`
}

// PeerRequest is the body of remove, block, name and connect.
type PeerRequest struct {
	NodeID string `json:"node_id"`
	Name   string `json:"name,omitempty"`
}

// Offer is the answer of GET /v1/offer and POST /v1/offer.
type Offer struct {
	OfferBytes   int64   `json:"offer_bytes"`
	OfferPercent float64 `json:"offer_percent,omitempty"`
	FreeBytes    int64   `json:"free_bytes"`
	Community    bool    `json:"community"`
}

// OfferRequest is the body of POST /v1/offer. Unset fields stay as they are.
type OfferRequest struct {
	// Size is "50GB", "10%" or bytes; empty leaves the offer alone.
	Size      string `json:"size,omitempty"`
	Community *bool  `json:"community,omitempty"`
	// NodeID with Size sets that friend's own quota ("0" removes it).
	NodeID string `json:"node_id,omitempty"`
}

// Error is the body of every answer with a status of 400 or more.
type Error struct {
	Error string `json:"error"`
	// Code is a stable machine-readable reason: "bad_request",
	// "unauthorized", "not_found", "refused", "internal".
	Code string `json:"code"`
}

// Daemon is what daemon.json in the home says about a running daemon.
type Daemon struct {
	Addr string `json:"addr"` // host:port of the API
	PID  int    `json:"pid"`
}

// KeySize is the API key's size in bytes (hex in the file).
const KeySize = 32

// LoadOrCreateKey returns the home's API key, creating it (mode 0600).
func LoadOrCreateKey(h home.Home) (string, error) {
	b, err := os.ReadFile(h.APIKeyPath())
	if err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) != 2*KeySize {
			return "", fmt.Errorf("API key %s is damaged: remove it and restart the daemon", h.APIKeyPath())
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read API key: %w", err)
	}
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("create API key: %w", err)
	}
	k := hex.EncodeToString(raw[:])
	if err := home.WriteFileAtomic(h.APIKeyPath(), []byte(k+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("create API key: %w", err)
	}
	return k, nil
}

// RequireKey wraps a handler so that only requests with the API key pass.
func RequireKey(key string, next http.Handler) http.Handler {
	want := []byte("Bearer " + key)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			WriteError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong API key")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// WriteJSON writes v with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError writes an Error.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, Error{Error: msg, Code: code})
}

// MaxRequest bounds request bodies.
const MaxRequest = 1 << 20

// ReadJSON decodes a request body of at most MaxRequest bytes into v.
func ReadJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequest))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}
