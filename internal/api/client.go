package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/cairn-backup/cairn/internal/home"
)

// ErrNoDaemon is returned by FromHome when no daemon runs for the home.
var ErrNoDaemon = errors.New("no daemon is running for this home")

// StatusError is a non-2xx answer of the API.
type StatusError struct {
	Status int
	Code   string
	Msg    string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("daemon: %s (HTTP %d)", e.Msg, e.Status)
}

// Client talks to a daemon's API.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

// NewClient returns a client for the API at addr (host:port) with key.
func NewClient(addr, key string) *Client {
	return &Client{base: "http://" + addr, key: key, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// FromHome finds the home's running daemon: it reads daemon.json and the
// API key and checks that the daemon answers. It returns ErrNoDaemon when
// none runs (a stale daemon.json included).
func FromHome(ctx context.Context, h home.Home) (*Client, error) {
	b, err := os.ReadFile(h.DaemonPath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoDaemon
	}
	if err != nil {
		return nil, fmt.Errorf("find daemon: %w", err)
	}
	var d Daemon
	if len(b) > 4096 || json.Unmarshal(b, &d) != nil || d.Addr == "" {
		return nil, ErrNoDaemon
	}
	key, err := LoadOrCreateKey(h)
	if err != nil {
		return nil, err
	}
	c := NewClient(d.Addr, key)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Health(ctx); err != nil {
		var se *StatusError
		if errors.As(err, &se) && se.Status == http.StatusUnauthorized {
			return nil, fmt.Errorf("the daemon refused this home's API key (%s): %w", h.APIKeyPath(), err)
		}
		return nil, ErrNoDaemon // dead daemon, stale file
	}
	return c, nil
}

// Addr is the API's address.
func (c *Client) Addr() string { return c.base[len("http://"):] }

// Do sends a request with a JSON body (nil for none) and decodes the
// answer into out (nil to discard it).
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("daemon %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("daemon %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("daemon %s: %w", path, err)
	}
	defer resp.Body.Close()
	lr := io.LimitReader(resp.Body, 16<<20)
	if resp.StatusCode >= 400 {
		var e Error
		_ = json.NewDecoder(lr).Decode(&e)
		if e.Error == "" {
			e.Error = resp.Status
		}
		return &StatusError{Status: resp.StatusCode, Code: e.Code, Msg: e.Error}
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, lr)
		return nil
	}
	if err := json.NewDecoder(lr).Decode(out); err != nil {
		return fmt.Errorf("daemon %s: decode answer: %w", path, err)
	}
	return nil
}

// Health checks that the daemon answers and accepts the key.
func (c *Client) Health(ctx context.Context) error {
	return c.Do(ctx, http.MethodGet, PathHealth, nil, nil)
}

// ID returns the node's identity and addresses.
func (c *Client) ID(ctx context.Context) (ID, error) {
	var v ID
	err := c.Do(ctx, http.MethodGet, PathID, nil, &v)
	return v, err
}

// Peers returns the peer table.
func (c *Client) Peers(ctx context.Context) ([]Peer, error) {
	var v []Peer
	err := c.Do(ctx, http.MethodGet, PathPeers, nil, &v)
	return v, err
}

// Invite creates an invite code; short makes a short one (see InviteRequest).
func (c *Client) Invite(ctx context.Context, ttl time.Duration, short bool) (Invite, error) {
	var v Invite
	err := c.Do(ctx, http.MethodPost, PathInvite, InviteRequest{TTLSeconds: int64(ttl / time.Second), Short: short}, &v)
	return v, err
}

// Join pairs with the node that made code.
func (c *Client) Join(ctx context.Context, code string) (Peer, error) {
	var v Peer
	err := c.Do(ctx, http.MethodPost, PathJoin, JoinRequest{Code: code}, &v)
	return v, err
}

// Add records a friend by its full multiaddr.
func (c *Client) Add(ctx context.Context, addr string) (Peer, error) {
	var v Peer
	err := c.Do(ctx, http.MethodPost, PathAdd, AddRequest{Addr: addr}, &v)
	return v, err
}

// Remove forgets a peer.
func (c *Client) Remove(ctx context.Context, nodeID string) error {
	return c.Do(ctx, http.MethodPost, PathRemove, PeerRequest{NodeID: nodeID}, nil)
}

// Block blocks a peer.
func (c *Client) Block(ctx context.Context, nodeID string) error {
	return c.Do(ctx, http.MethodPost, PathBlock, PeerRequest{NodeID: nodeID}, nil)
}

// Name names a peer.
func (c *Client) Name(ctx context.Context, nodeID, name string) error {
	return c.Do(ctx, http.MethodPost, PathName, PeerRequest{NodeID: nodeID, Name: name}, nil)
}

// Offer returns the current offer.
func (c *Client) Offer(ctx context.Context) (Offer, error) {
	var v Offer
	err := c.Do(ctx, http.MethodGet, PathOffer, nil, &v)
	return v, err
}

// SetOffer changes the offer, community mode or a friend's quota.
func (c *Client) SetOffer(ctx context.Context, req OfferRequest) (Offer, error) {
	var v Offer
	err := c.Do(ctx, http.MethodPost, PathOffer, req, &v)
	return v, err
}
