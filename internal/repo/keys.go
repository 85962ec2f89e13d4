package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"sort"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/store"
)

// KeyInfo describes a key file, without anything secret.
type KeyInfo struct {
	Name     string    `json:"id"`
	Created  time.Time `json:"created"`
	Host     string    `json:"host"`
	Username string    `json:"username"`
	Current  bool      `json:"current"`
}

// AddKey wraps the master key under a new passphrase and stores the key file.
func (r *Repository) AddKey(ctx context.Context, passphrase []byte, o Options) (string, error) {
	host, _ := os.Hostname()
	uname := ""
	if u, err := user.Current(); err == nil {
		uname = u.Username
	}
	kf, err := crypto.NewKeyFile(r.keys.Master(), passphrase, o.kdf(), host, uname, r.now())
	if err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	b, err := kf.Marshal()
	if err != nil {
		return "", err
	}
	id := crypto.Hash(b)
	if err := r.st.Put(ctx, store.Handle{Type: store.Key, Name: id.String()}, bytes.NewReader(b), int64(len(b))); err != nil {
		return "", fmt.Errorf("add key: %w", err)
	}
	return id.String(), nil
}

// ListKeys lists the key files.
func (r *Repository) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var out []KeyInfo
	err := r.st.List(ctx, store.Key, func(i store.Info) error {
		kf, err := r0LoadKey(ctx, r.st, i.Handle.Name)
		if err != nil {
			out = append(out, KeyInfo{Name: i.Handle.Name, Host: "(unreadable)"})
			return nil
		}
		out = append(out, KeyInfo{Name: i.Handle.Name, Created: kf.Created, Host: kf.Host, Username: kf.Username, Current: i.Handle.Name == r.KeyName})
		return nil
	})
	sort.Slice(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out, err
}

// ErrLastKey is returned when removing the only key file.
var ErrLastKey = errors.New("refusing to remove the last key file")

// RemoveKey deletes a key file (by full name or unique prefix). The key
// that opened the repository can be removed only if another one remains.
func (r *Repository) RemoveKey(ctx context.Context, prefix string) (string, error) {
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return "", err
	}
	var match []string
	for _, k := range keys {
		if len(prefix) > 0 && len(k.Name) >= len(prefix) && k.Name[:len(prefix)] == prefix {
			match = append(match, k.Name)
		}
	}
	switch {
	case len(match) == 0:
		return "", fmt.Errorf("no key file %q", prefix)
	case len(match) > 1:
		return "", fmt.Errorf("key prefix %q is ambiguous", prefix)
	case len(keys) == 1:
		return "", ErrLastKey
	}
	if err := r.st.Delete(ctx, store.Handle{Type: store.Key, Name: match[0]}); err != nil {
		return "", fmt.Errorf("remove key: %w", err)
	}
	return match[0], nil
}

// ChangePassphrase adds a key file for the new passphrase, then removes the
// one that opened the repository. In that order, a crash leaves both, never
// neither.
func (r *Repository) ChangePassphrase(ctx context.Context, newPass []byte, o Options) (string, error) {
	name, err := r.AddKey(ctx, newPass, o)
	if err != nil {
		return "", err
	}
	if r.KeyName != "" && r.KeyName != name {
		if err := r.st.Delete(ctx, store.Handle{Type: store.Key, Name: r.KeyName}); err != nil && !errors.Is(err, store.ErrNotFound) {
			return name, fmt.Errorf("remove old key: %w", err)
		}
	}
	r.KeyName = name
	return name, nil
}
