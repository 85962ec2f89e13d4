package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
	"github.com/cairn-backup/cairn/internal/store/tiered"
)

var errNoPassphrase = errors.New("no passphrase given and no terminal to ask on")

// home resolves the node's home folder.
func (g *Globals) home() (home.Home, error) {
	return home.Resolve(g.Home, g.Getenv("CAIRN_HOME"))
}

// repoDir is the local repository folder: --repo, $CAIRN_REPO, or the
// home's. inHome says whether it is the home's own.
func (g *Globals) repoDir() (dir string, inHome bool, err error) {
	if g.Repo != "" {
		d, err := filepath.Abs(g.Repo)
		return d, false, err
	}
	if r := g.Getenv("CAIRN_REPO"); r != "" {
		d, err := filepath.Abs(r)
		return d, false, err
	}
	h, err := g.home()
	if err != nil {
		return "", false, err
	}
	return h.RepoDir(), true, nil
}

func (g *Globals) isTerminal() bool {
	f, ok := g.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (g *Globals) stderrIsTerminal() bool {
	f, ok := g.Stderr.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// passphrase reads the passphrase from --password-file, $CAIRN_PASSWORD_FILE,
// $CAIRN_PASSWORD, or the terminal (twice when confirm is set).
func (g *Globals) passphrase(prompt string, confirm bool) ([]byte, error) {
	file := g.PasswordFile
	if file == "" {
		file = g.Getenv("CAIRN_PASSWORD_FILE")
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		b = bytes.TrimRight(b, "\r\n")
		if len(b) == 0 {
			return nil, fmt.Errorf("password file %s is empty", file)
		}
		return b, nil
	}
	if p := g.Getenv("CAIRN_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	if !g.isTerminal() {
		return nil, errNoPassphrase
	}
	if prompt == "" {
		prompt = "Passphrase: "
	}
	p, err := g.readSecret(prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if confirm {
		again, err := g.readSecret("Repeat passphrase: ")
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, again) {
			return nil, errors.New("the passphrases do not match")
		}
	}
	return p, nil
}

func (g *Globals) readSecret(prompt string) ([]byte, error) {
	fmt.Fprint(g.Stderr, prompt)
	f := g.Stdin.(*os.File)
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read passphrase: %w", err)
	}
	return p, nil
}

// readLine reads one line from standard input (for codes pasted in).
func (g *Globals) readLine(prompt string) (string, error) {
	fmt.Fprint(g.Stderr, prompt)
	s, err := bufio.NewReader(g.Stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// openStore opens the local store of the repository.
func (g *Globals) openStore() (store.Store, string, bool, error) {
	dir, inHome, err := g.repoDir()
	if err != nil {
		return nil, "", false, err
	}
	if _, err := os.Stat(filepath.Join(dir, store.ConfigName)); err != nil {
		return nil, dir, inHome, fmt.Errorf("%s: %w", dir, repo.ErrNoRepository)
	}
	st, err := local.Open(dir)
	if err != nil {
		return nil, dir, inHome, err
	}
	return st, dir, inHome, nil
}

// openRepo opens the repository with the passphrase, without loading the
// index (commands that need it call LoadIndex). The home's repository
// reads what it does not keep locally (packs after a recovery, or placed
// with --no-local) from the owner's hosts, through a node started only
// when such a read happens.
func (g *Globals) openRepo(ctx context.Context) (*repo.Repository, error) {
	st, dir, inHome, err := g.openStore()
	if err != nil {
		return nil, err
	}
	pw, err := g.passphrase("Passphrase for "+dir+": ", false)
	if err != nil {
		return nil, err
	}
	var keys *crypto.Keys
	if inHome {
		h, err := g.home()
		if err != nil {
			return nil, err
		}
		if len(friends(h)) > 0 {
			st = tiered.New(st, func(ctx context.Context) (store.Store, error) {
				if keys == nil {
					return nil, errors.New("repository not open")
				}
				return g.openPeerReader(ctx, h, keys)
			}, true)
		}
	}
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	keys = r.Keys()
	if inHome {
		if err := g.afterUnlock(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// ownerFile is home/owner.json: who owns this node, no secrets.
type ownerFile struct {
	OwnerID  string `json:"owner_id"`
	OwnerPub string `json:"owner_pub"`
}

// afterUnlock records the owner in the home, so the node can say whom it
// acts for without the passphrase, and certifies the node.
func (g *Globals) afterUnlock(r *repo.Repository) error {
	h, err := g.home()
	if err != nil {
		return err
	}
	if err := writeOwner(h, r.Keys()); err != nil {
		return err
	}
	return g.issueNodeCert(h, r.Keys())
}

// writeOwner writes home/owner.json unless it says so already.
func writeOwner(h home.Home, keys *crypto.Keys) error {
	of := ownerFile{OwnerID: keys.OwnerID(), OwnerPub: base64.StdEncoding.EncodeToString(keys.OwnerPublic())}
	if b, err := os.ReadFile(h.OwnerPath()); err == nil {
		var cur ownerFile
		if json.Unmarshal(b, &cur) == nil && cur == of {
			return nil
		}
	}
	b, _ := json.MarshalIndent(of, "", "  ")
	return home.WriteFileAtomic(h.OwnerPath(), b, 0o600)
}

// issueNodeCert certifies this home's node for the owner, unless a
// certificate from this owner is valid for another month.
func (g *Globals) issueNodeCert(h home.Home, keys *crypto.Keys) error {
	if b, err := os.ReadFile(h.NodeCertPath()); err == nil {
		if c, err := crypto.ParseNodeCert(b); err == nil && c.OwnerID() == keys.OwnerID() {
			if id, err := p2p.NodeID(h); err == nil && c.Verify(id.String(), time.Now().Add(30*24*time.Hour)) == nil {
				return nil
			}
		}
	}
	return p2p.IssueNodeCert(h, keys)
}
