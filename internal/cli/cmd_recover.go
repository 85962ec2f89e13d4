package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/api"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/hostclient"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

type recoverOptions struct {
	code  string
	peers []string
	wait  time.Duration
}

func newRecoverCmd(g *Globals) *cobra.Command {
	var o recoverOptions
	c := &cobra.Command{
		Use:   "recover --recovery-code CODE [--peer MULTIADDR]...",
		Short: "Bring your backups back on a new machine from your peers, with the recovery code",
		Long: `Recover on a machine with an empty home: derive the owner from the recovery
code, find the nodes that keep the owner's data (the given peers, the LAN,
the DHT, then the host list they keep), prove ownership, and fetch the
repository's metadata. Afterwards 'cairn restore' works as usual, reading
file content from the peers, and this machine can go on backing up as the
same owner.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRecover(cmd.Context(), g, o)
		},
	}
	c.Flags().StringVar(&o.code, "recovery-code", "", "the recovery code (default: $CAIRN_RECOVERY_CODE, or asked for)")
	c.Flags().StringArrayVar(&o.peers, "peer", nil, "a node that keeps your data, as a full multiaddr with /p2p/ID (repeatable)")
	c.Flags().DurationVar(&o.wait, "discover", 5*time.Second, "how long to look for peers on the LAN and the DHT")
	return c
}

type recoverResult struct {
	OwnerID   string   `json:"owner_id"`
	Hosts     []string `json:"hosts"`
	Snapshots int      `json:"snapshots"`
	Objects   int      `json:"objects"`
	Repo      string   `json:"repository"`
}

func runRecover(ctx context.Context, g *Globals, o recoverOptions) error {
	h, err := g.home()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(h.RepoDir(), store.ConfigName)); err == nil {
		return fmt.Errorf("%s already has a repository: recover into an empty home (--home DIR)", h.Dir)
	}
	if _, err := api.FromHome(ctx, h); err == nil {
		return errors.New("a daemon is running for this home: stop it before recovering")
	}
	code := o.code
	if code == "" {
		code = g.Getenv("CAIRN_RECOVERY_CODE")
	}
	if code == "" {
		if !g.isTerminal() {
			return fmt.Errorf("%w: give --recovery-code or $CAIRN_RECOVERY_CODE", ErrUsage)
		}
		if code, err = g.readLine("Recovery code: "); err != nil {
			return err
		}
	}
	mk, err := crypto.ParseRecoveryCode(code)
	if err != nil {
		return err
	}
	keys := crypto.Derive(mk)
	if err := h.Ensure(); err != nil {
		return err
	}
	if err := writeOwner(h, keys); err != nil {
		return err
	}
	if err := p2p.IssueNodeCert(h, keys); err != nil {
		return err
	}
	g.say("owner %s\n", keys.OwnerID()[:16])

	log := g.logger()
	node, err := p2p.New(ctx, p2p.Config{Home: h, Logger: log})
	if err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	defer node.Close()
	client := hostclient.New(node.Host(), hostclient.OwnerSigner(keys), hostclient.Options{})

	// Every node found that holds something of ours becomes a friend.
	adopt := func(ai peer.AddrInfo) bool {
		if ai.ID == node.ID() {
			return false
		}
		if err := node.Connect(ctx, ai, 10*time.Second); err != nil {
			g.say("  %s: unreachable (%v)\n", short(ai.ID.String()), err)
			return false
		}
		holds := false
		err := client.List(ctx, ai.ID, store.Config, func(hostclient.Held) error { holds = true; return errStopList })
		if err != nil && !errors.Is(err, errStopList) {
			g.say("  %s: %v\n", short(ai.ID.String()), err)
			return false
		}
		if !holds {
			return false
		}
		var addrs []string
		for _, a := range ai.Addrs {
			addrs = append(addrs, a.String())
		}
		_ = node.Peers().Update(ai.ID, true, func(p *p2p.Peer) {
			p.Trust = p2p.TrustFriend
			p.OwnerID = ""
			if len(addrs) > 0 {
				p.Addrs = addrs
			}
		})
		g.say("  found your data on %s\n", short(ai.ID.String()))
		return true
	}

	g.say("looking for your peers...\n")
	for _, a := range o.peers {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return fmt.Errorf("%w: --peer %s: %v", ErrUsage, a, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(m)
		if err != nil {
			return fmt.Errorf("%w: --peer %s: needs /p2p/NODE_ID: %v", ErrUsage, a, err)
		}
		adopt(*ai)
	}
	// The LAN (mDNS) and the DHT (provider records under the owner ID).
	dctx, cancel := context.WithTimeout(ctx, o.wait)
	found := node.FindOwnerNodes(dctx, keys.OwnerID(), 20)
	<-dctx.Done()
	cancel()
	for _, ai := range found {
		adopt(ai)
	}
	for _, ps := range node.PeerStates() {
		if ps.Connected && ps.Trust != p2p.TrustFriend {
			adopt(ps.AddrInfo())
		}
	}

	p, err := peerstore.Open(ctx, peerstore.Options{Home: h, Node: node, Signer: hostclient.OwnerSigner(keys), Logger: log})
	if err != nil {
		return err
	}
	defer p.Close()
	hosts := p.Candidates(ctx)
	if len(hosts) == 0 {
		return errors.New("no node holding your data was found: give one with --peer MULTIADDR")
	}
	if _, err := p.Engine().Rebuild(ctx, hosts); err != nil {
		return fmt.Errorf("learn what the hosts keep: %w", err)
	}
	peers := p.Store(placement.Redundancy{})

	// The host list names the owner's other hosts: one survivor finds the rest.
	_ = peers.List(ctx, store.Meta, func(i store.Info) error {
		b, err := store.ReadAll(ctx, peers, i.Handle)
		if err != nil {
			return nil
		}
		l, err := repo.OpenHostList(keys, b)
		if err != nil {
			return nil
		}
		for _, hi := range l.Hosts {
			id, err := peer.Decode(hi.NodeID)
			if err != nil {
				continue
			}
			if ps, ok := node.Peers().Get(id); ok && ps.Trust == p2p.TrustFriend {
				continue
			}
			ai := peer.AddrInfo{ID: id}
			for _, a := range hi.Addrs {
				if m, err := ma.NewMultiaddr(a); err == nil {
					ai.Addrs = append(ai.Addrs, m)
				}
			}
			adopt(ai)
		}
		return nil
	})
	hosts = p.Candidates(ctx)
	if _, err := p.Engine().Rebuild(ctx, hosts); err != nil {
		return fmt.Errorf("learn what the hosts keep: %w", err)
	}

	// Fetch the metadata into a local repository; packs stay on the hosts
	// and are read from them on demand.
	st, err := local.Create(h.RepoDir())
	if err != nil {
		return err
	}
	n := 0
	for _, t := range []store.Type{store.Key, store.Index, store.Snapshot, store.Meta, store.Config} {
		err := peers.List(ctx, t, func(i store.Info) error {
			b, err := store.ReadAll(ctx, peers, i.Handle)
			if err != nil {
				return fmt.Errorf("fetch %s: %w", i.Handle, err)
			}
			n++
			return st.Put(ctx, i.Handle, bytes.NewReader(b), int64(len(b)))
		})
		if err != nil {
			_ = os.RemoveAll(h.RepoDir())
			return fmt.Errorf("fetch metadata: %w", err)
		}
	}
	r, err := repo.OpenWithMaster(ctx, st, mk, repo.Options{})
	if err != nil {
		_ = os.RemoveAll(h.RepoDir())
		return fmt.Errorf("open the recovered repository: %w", err)
	}
	defer r.Close()
	snaps, _, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	if pw := g.Getenv("CAIRN_NEW_PASSWORD"); pw != "" {
		if _, err := r.AddKey(ctx, []byte(pw), repo.Options{}); err != nil {
			return err
		}
	}
	res := recoverResult{OwnerID: keys.OwnerID(), Snapshots: len(snaps), Objects: n, Repo: h.RepoDir()}
	for _, c := range hosts {
		if c.Info.Online {
			res.Hosts = append(res.Hosts, c.ID())
		}
	}
	if g.JSON {
		return g.printJSON(res)
	}
	g.printf("recovered %d snapshots from %d hosts into %s\n", res.Snapshots, len(res.Hosts), res.Repo)
	g.printf("the repository opens with your old passphrase (or add one: cairn key add --recovery-code)\n")
	g.printf("next: cairn snapshots, then cairn restore latest --target DIR\n")
	return nil
}

var errStopList = errors.New("stop")

func short(s string) string {
	if len(s) > 12 {
		return s[len(s)-12:]
	}
	return s
}

// say prints progress for people on standard error.
func (g *Globals) say(format string, args ...any) {
	if g.Quiet || g.JSON {
		return
	}
	fmt.Fprintf(g.Stderr, format, args...)
}
