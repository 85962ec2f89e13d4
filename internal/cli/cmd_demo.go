package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/daemon"
	"github.com/cairn-backup/cairn/internal/home"
	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/peerstore"
	"github.com/cairn-backup/cairn/internal/placement"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
	"github.com/cairn-backup/cairn/internal/store/tiered"
)

func newDemoCmd(g *Globals) *cobra.Command {
	var keep bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "See cairn work in a minute: three nodes on this machine back each other up",
		Long: `Starts three nodes on 127.0.0.1 in this process (alice, bob and carol),
backs up a sample folder of alice's onto bob and carol, stops bob, loses
alice's local copy, and restores everything from carol — narrating each
step. Nothing leaves this machine; everything lives in a temporary folder.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDemo(cmd.Context(), g, keep)
		},
	}
	c.Flags().BoolVar(&keep, "keep", false, "keep the demo's folder afterwards to look around")
	return c
}

type narrator struct {
	g     *Globals
	start time.Time
	step  int
}

func (n *narrator) say(format string, args ...any) {
	n.step++
	fmt.Fprintf(n.g.Stdout, "\n[%2d] %s\n", n.step, fmt.Sprintf(format, args...))
}

func (n *narrator) detail(format string, args ...any) {
	fmt.Fprintf(n.g.Stdout, "     %s\n", fmt.Sprintf(format, args...))
}

func runDemo(ctx context.Context, g *Globals, keep bool) error {
	dir, err := os.MkdirTemp("", "cairn-demo-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	}
	n := &narrator{g: g, start: time.Now()}
	fmt.Fprintf(g.Stdout, "cairn demo — everything happens in %s, on 127.0.0.1 only\n", dir)

	// 1. Three nodes.
	n.say("Starting three nodes: alice (who backs up), bob and carol (her friends, who keep her encrypted data)")
	names := []string{"alice", "bob", "carol"}
	nodes := map[string]*daemon.Daemon{}
	homes := map[string]home.Home{}
	quiet := slog.New(slog.DiscardHandler)
	for _, name := range names {
		h := home.Home{Dir: filepath.Join(dir, name)}
		d, err := daemon.StartLoopback(ctx, h, name, name != "alice", quiet)
		if err != nil {
			return err
		}
		defer d.Close()
		nodes[name], homes[name] = d, h
		n.detail("%-5s node %s listening on %s", name, short(d.Node().ID().String()), d.Node().Addrs()[0])
	}

	// 2. A sample folder.
	sample := filepath.Join(dir, "alice-files")
	files := map[string][]byte{
		"notes/todo.txt":           []byte("water the plants\ncall grandma\nback up everything\n"),
		"notes/recipes/bread.md":   bytes.Repeat([]byte("flour, water, salt, yeast. knead, wait, bake.\n"), 50),
		"photos/holiday-2026.raw":  randomBytes(3 << 20),
		"photos/holiday-copy.raw":  nil, // same bytes: stored once
		"taxes/2026/statement.pdf": randomBytes(256 << 10),
	}
	files["photos/holiday-copy.raw"] = files["photos/holiday-2026.raw"]
	var total int64
	for name, data := range files {
		p := filepath.Join(sample, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
		total += int64(len(data))
	}
	n.say("alice has a folder of %d files (%s): notes, photos (one copied twice), taxes", len(files), humanBytes(total))

	// 3. Her repository.
	ah := homes["alice"]
	st, err := local.Create(ah.RepoDir())
	if err != nil {
		return err
	}
	r, err := repo.Init(ctx, st, []byte("demo passphrase"), repo.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	if err := writeOwner(ah, r.Keys()); err != nil {
		return err
	}
	if err := p2p.IssueNodeCert(ah, r.Keys()); err != nil {
		return err
	}
	n.say("alice creates her encrypted repository; her recovery code is the one thing to write down:")
	n.detail("%s", r.Keys().RecoveryCode())

	// 4. Pairing.
	n.say("alice pairs with bob and carol using one-time invite codes")
	for _, name := range []string{"bob", "carol"} {
		code, _, err := nodes[name].Node().CreateInvite(10 * time.Minute)
		if err != nil {
			return err
		}
		if _, err := nodes["alice"].Node().Join(ctx, code); err != nil {
			return fmt.Errorf("pair with %s: %w", name, err)
		}
		n.detail("%s's code %s… → friends", name, code[:min(len(code), 17)])
	}

	// 5. Backup.
	sum, err := backup.Run(ctx, r, backup.Options{Paths: []string{sample}})
	if err != nil {
		return err
	}
	n.say("alice backs up: %d files, %s read, %s new after deduplication, %s stored after compression and encryption",
		sum.Files, humanBytes(sum.Bytes), humanBytes(sum.BytesAdded), humanBytes(sum.StoredAdded))
	n.detail("snapshot %s, signed with alice's owner key", sum.SnapshotID[:8])

	// 6. Placement on friends.
	peers, err := peerstore.Open(ctx, peerstore.Options{Home: ah, Node: nodes["alice"].Node(), Logger: quiet})
	if err != nil {
		return err
	}
	defer peers.Close()
	hl, err := hostList(r, nodes["alice"].Node().Peers().Friends())
	if err != nil {
		return err
	}
	ps, err := peers.Sync(ctx, st, placement.SyncOptions{Redundancy: placement.Replicas(2), HostList: hl})
	if err != nil {
		return err
	}
	n.say("her node places every pack on both friends (2 copies) and the metadata on each: %s", placementText(&ps))
	for _, name := range []string{"bob", "carol"} {
		objs, size, clear := hostedStats(homes[name].HostedDir(), []string{"todo.txt", "water the plants", "holiday", "statement"})
		n.detail("%s keeps %d objects (%s) for alice — names or text in the clear: %v", name, objs, humanBytes(size), clear)
	}

	// 7. Disaster.
	n.say("disaster: bob's machine goes offline, and alice's disk loses her local copy of the data")
	nodes["bob"].Close()
	if err := os.RemoveAll(filepath.Join(ah.RepoDir(), "data")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(ah.RepoDir(), "data"), 0o700); err != nil {
		return err
	}

	// 8. Restore from carol.
	n.say("alice restores her folder: every pack comes from carol, every byte checked")
	reader := peers.Store(placement.Redundancy{})
	ts := tiered.New(st, func(context.Context) (store.Store, error) { return reader, nil }, true)
	r2, err := repo.Open(ctx, ts, []byte("demo passphrase"), repo.Options{})
	if err != nil {
		return err
	}
	snap, err := r2.FindSnapshot(ctx, "latest")
	if err != nil {
		return err
	}
	target := filepath.Join(dir, "restored")
	if _, err := restore.Run(ctx, r2, snap, restore.Options{Target: target}); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	same := 0
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(target, sample, name))
		if err == nil && bytes.Equal(got, data) {
			same++
		}
	}
	n.detail("%d of %d files restored byte-identical into %s", same, len(files), target)
	if same != len(files) {
		return fmt.Errorf("demo: only %d of %d files came back identical", same, len(files))
	}

	n.say("done in %s. On your machines:", humanDuration(time.Since(n.start)))
	n.detail("cairn backup ~/Documents        # local backup, no setup")
	n.detail("cairn daemon                    # run the node: LAN discovery, hosting, placement")
	n.detail("cairn peers invite / peers join # become friends")
	n.detail("cairn recover --recovery-code … # a new machine after a disaster")
	if keep {
		n.detail("the demo's files stay in %s", dir)
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// hostedStats counts what a host keeps and whether any needle appears in
// the clear.
func hostedStats(dir string, needles []string) (int, int64, bool) {
	var n int
	var size int64
	clear := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".db") || strings.Contains(p, ".db-") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		n++
		size += int64(len(b))
		for _, x := range needles {
			if bytes.Contains(b, []byte(x)) || strings.Contains(p, x) {
				clear = true
			}
		}
		return nil
	})
	return n, size, clear
}
