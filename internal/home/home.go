// Package home locates a node's home folder and the files inside it.
//
// One home per node: the node's config, its libp2p key, the catalog, the
// local repository and the data it keeps for other owners. The folder is
// chosen by --home, then $CAIRN_HOME, then the XDG data folder.
package home

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Home is a node's home folder.
type Home struct {
	Dir string
}

// Resolve picks the home folder: flag if set, then env (the value of
// $CAIRN_HOME), then the platform's data folder.
func Resolve(flag, env string) (Home, error) {
	dir := flag
	if dir == "" {
		dir = env
	}
	if dir == "" {
		d, err := defaultDir()
		if err != nil {
			return Home{}, err
		}
		dir = d
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Home{}, fmt.Errorf("home %s: %w", dir, err)
	}
	return Home{Dir: abs}, nil
}

func defaultDir() (string, error) {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" && runtime.GOOS != "windows" {
		return filepath.Join(x, "cairn"), nil
	}
	switch runtime.GOOS {
	case "windows", "darwin":
		d, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("find home folder: %w", err)
		}
		return filepath.Join(d, "cairn"), nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home folder (set --home or CAIRN_HOME): %w", err)
	}
	return filepath.Join(h, ".local", "share", "cairn"), nil
}

// Ensure creates the home folder, readable by its owner only.
func (h Home) Ensure() error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return fmt.Errorf("create home %s: %w", h.Dir, err)
	}
	return nil
}

// Exists reports whether the home folder exists.
func (h Home) Exists() bool {
	st, err := os.Stat(h.Dir)
	return err == nil && st.IsDir()
}

// Paths of the files in a home. Each subsystem owns its own file.
func (h Home) RepoDir() string      { return filepath.Join(h.Dir, "repo") }        // local repository
func (h Home) CatalogPath() string  { return filepath.Join(h.Dir, "catalog.db") }  // SQLite catalog
func (h Home) NodeKeyPath() string  { return filepath.Join(h.Dir, "node.key") }    // libp2p key, 0600
func (h Home) NodeCertPath() string { return filepath.Join(h.Dir, "node.cert") }   // owner's certificate for this node
func (h Home) OwnerPath() string    { return filepath.Join(h.Dir, "owner.json") }  // owner ID and public key (no secrets)
func (h Home) APIKeyPath() string   { return filepath.Join(h.Dir, "api.key") }     // daemon API key, 0600
func (h Home) DaemonPath() string   { return filepath.Join(h.Dir, "daemon.json") } // running daemon's API address
func (h Home) ConfigPath() string   { return filepath.Join(h.Dir, "config.json") } // node settings
func (h Home) HostedDir() string    { return filepath.Join(h.Dir, "hosted") }      // other owners' objects
func (h Home) CacheDir() string     { return filepath.Join(h.Dir, "cache") }       // rebuildable caches

// WriteFileAtomic writes data to path through a temporary file, fsync and
// rename, then syncs the folder: a crash leaves the old or the new file.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	cleanup := func(e error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, e)
	}
	if err := f.Chmod(perm); err != nil && runtime.GOOS != "windows" {
		return cleanup(err)
	}
	if _, err := f.Write(data); err != nil {
		return cleanup(err)
	}
	if err := f.Sync(); err != nil {
		return cleanup(err)
	}
	if err := f.Close(); err != nil {
		return cleanup(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: not supported on every platform
		d.Close()
	}
	return nil
}

// ErrNoHome is returned when a command needs a home that does not exist.
var ErrNoHome = errors.New("no cairn home here yet")
