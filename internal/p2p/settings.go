package p2p

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-backup/cairn/internal/home"
)

// Settings are a node's network settings, kept in the home (SettingsPath).
type Settings struct {
	Version int `json:"version"`
	// OfferBytes is the disk space shared with others, when set as a size.
	OfferBytes int64 `json:"offer_bytes,omitempty"`
	// OfferPercent is the share of the free disk offered, when set as a
	// percentage (0 < p <= 100); it wins over OfferBytes.
	OfferPercent float64 `json:"offer_percent,omitempty"`
	// Community accepts strangers under the reciprocity rule (opt-in).
	Community bool `json:"community"`
	// Listen are the node's listen multiaddrs (empty: DefaultListen).
	Listen []string `json:"listen,omitempty"`
	// NoMDNS, NoNATPortMap and NoRelay turn LAN discovery, UPnP/NAT-PMP
	// port mapping, and relays with hole punching off for every node of
	// this home, daemon or short-lived.
	NoMDNS       bool `json:"no_mdns,omitempty"`
	NoNATPortMap bool `json:"no_nat_port_map,omitempty"`
	NoRelay      bool `json:"no_relay,omitempty"`
	// Bandwidth limits for backup traffic with peers, in bytes per second
	// (0: unlimited): all peers together, and each peer.
	LimitUp       int64 `json:"limit_up,omitempty"`
	LimitDown     int64 `json:"limit_down,omitempty"`
	PeerLimitUp   int64 `json:"peer_limit_up,omitempty"`
	PeerLimitDown int64 `json:"peer_limit_down,omitempty"`
	// WANWindow is when placement may send to peers outside the LAN, as a
	// schedule window spec ("22:00-06:00"); empty is always.
	WANWindow string `json:"wan_window,omitempty"`
}

const settingsVersion = 1

// Default offer on first start: this share of the free disk, at most
// defaultOfferCap bytes.
const (
	defaultOfferPercent = 10
	defaultOfferCap     = 100 << 30
)

// SettingsPath is the network settings file in a home.
func SettingsPath(h home.Home) string { return filepath.Join(h.Dir, "node.json") }

// LoadSettings reads the settings; on first start it writes the defaults:
// 10% of the free disk under the home, at most 100 GiB.
func LoadSettings(h home.Home) (Settings, error) {
	b, err := os.ReadFile(SettingsPath(h))
	if errors.Is(err, os.ErrNotExist) {
		s := Settings{Version: settingsVersion}
		if free, err := FreeDisk(h.Dir); err == nil {
			s.OfferBytes = min(free*defaultOfferPercent/100, defaultOfferCap)
		}
		return s, SaveSettings(h, s)
	}
	if err != nil {
		return Settings{}, fmt.Errorf("load node settings: %w", err)
	}
	if len(b) > 1<<20 {
		return Settings{}, errors.New("load node settings: file too large")
	}
	var s Settings
	if err := json.Unmarshal(b, &s); err != nil {
		return Settings{}, fmt.Errorf("load node settings %s: %w", SettingsPath(h), err)
	}
	if s.Version != settingsVersion {
		return Settings{}, fmt.Errorf("load node settings: version %d not supported", s.Version)
	}
	return s, nil
}

// SaveSettings writes the settings atomically.
func SaveSettings(h home.Home, s Settings) error {
	s.Version = settingsVersion
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("save node settings: %w", err)
	}
	if err := home.WriteFileAtomic(SettingsPath(h), b, 0o600); err != nil {
		return fmt.Errorf("save node settings: %w", err)
	}
	return nil
}

// Offer returns the space offered in bytes, given the free disk now.
func (s Settings) Offer(free int64) int64 {
	if s.OfferPercent > 0 {
		return int64(float64(free) * s.OfferPercent / 100)
	}
	return s.OfferBytes
}

// ParseSize parses "50GB", "1.5TiB", "800M", "1234" (bytes) or "10%".
// It returns bytes, or a percentage when the value ends in %.
func ParseSize(s string) (bytes int64, percent float64, err error) {
	s = strings.TrimSpace(s)
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 || v > 100 {
			return 0, 0, fmt.Errorf("invalid size %q: a percentage is between 0 and 100", s)
		}
		return 0, v, nil
	}
	i := len(s)
	for i > 0 && (s[i-1] < '0' || s[i-1] > '9') {
		i--
	}
	num, unit := strings.TrimSpace(s[:i]), strings.ToUpper(strings.TrimSpace(s[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, 0, fmt.Errorf("invalid size %q: want e.g. 50GB, 800MiB or 10%%", s)
	}
	mult := map[string]float64{
		"": 1, "B": 1,
		"K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12,
		"KIB": 1 << 10, "MIB": 1 << 20, "GIB": 1 << 30, "TIB": 1 << 40,
	}
	m, ok := mult[unit]
	if !ok {
		return 0, 0, fmt.Errorf("invalid size %q: unknown unit %q", s, unit)
	}
	if v*m > 1<<62 {
		return 0, 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v * m), 0, nil
}
