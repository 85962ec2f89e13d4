package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
)

func newVersionsCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "versions PATH",
		Short: "List every distinct version of one file across snapshots",
		Long: `List every distinct version of the file at PATH (absolute, or relative to
the current folder) found in the snapshots, oldest first: when it was first
and last seen, its size, modification time, content hash, and the snapshot to
restore it from with: cairn restore SNAPSHOT:PATH --target DIR`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := snapshotPath(args[0])
			if err != nil {
				return err
			}
			return runVersions(cmd.Context(), g, p)
		},
	}
}

type versionJSON struct {
	Path       string    `json:"path"`
	Type       string    `json:"type"`
	Size       uint64    `json:"size"`
	MTime      time.Time `json:"mtime"`
	Hash       string    `json:"hash"`
	LinkTarget string    `json:"link_target,omitempty"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	// SnapshotID is the newest snapshot holding this version.
	SnapshotID string `json:"snapshot_id"`
	Snapshots  int    `json:"snapshots"`
	Restore    string `json:"restore"`
}

// contentHash identifies a file's content across snapshots, the hash
// backup reports for each file.
func contentHash(n *repo.Node) string { return repo.ContentHash(n).String() }

func runVersions(ctx context.Context, g *Globals, p string) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	snaps, bad, err := r.Snapshots(ctx)
	if err != nil {
		return err
	}
	for _, e := range bad {
		fmt.Fprintf(g.Stderr, "warning: %v\n", e)
	}
	if err := r.LoadIndex(ctx); err != nil {
		return fmt.Errorf("load index: %w", err)
	}
	var out []versionJSON
	byHash := map[string]int{}
	var folder bool
	for _, s := range snaps { // oldest first
		chain, err := restore.FindPath(ctx, r, s.Tree, p)
		if errors.Is(err, restore.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", s.ID.Short(), err)
		}
		if len(chain) == 0 {
			folder = true
			continue
		}
		n := chain[len(chain)-1]
		if n.Subtree != nil {
			folder = true
			continue
		}
		h := contentHash(n)
		if i, ok := byHash[h]; ok {
			v := &out[i]
			v.LastSeen, v.SnapshotID = s.Time, s.ID.String()
			v.Snapshots++
			v.Restore = restoreHint(s.ID, p)
			continue
		}
		byHash[h] = len(out)
		out = append(out, versionJSON{Path: p, Type: n.Type, Size: n.Size, MTime: n.ModTime, Hash: h, LinkTarget: n.LinkTarget,
			FirstSeen: s.Time, LastSeen: s.Time, SnapshotID: s.ID.String(), Snapshots: 1, Restore: restoreHint(s.ID, p)})
	}
	if len(out) == 0 {
		if folder {
			return errors.Join(ErrUsage, fmt.Errorf("%s is a folder; list it with: cairn ls latest %s", p, p))
		}
		return fmt.Errorf("%w: %s is in none of the %d snapshots", restore.ErrNotFound, p, len(snaps))
	}
	if g.JSON {
		return g.printJSON(out)
	}
	tw := g.table()
	fmt.Fprintln(tw, "#\tFirst seen\tLast seen\tSize\tModified\tHash\tSnapshot")
	for i, v := range out {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, v.FirstSeen.Local().Format("2006-01-02 15:04"), v.LastSeen.Local().Format("2006-01-02 15:04"),
			humanBytes(int64(v.Size)), v.MTime.Local().Format("2006-01-02 15:04:05"), v.Hash[:12], v.SnapshotID[:8])
	}
	tw.Flush()
	g.printf("%d versions of %s; restore one with: cairn restore SNAPSHOT:%s --target DIR\n", len(out), p, p)
	return nil
}

func restoreHint(id crypto.ID, p string) string {
	return fmt.Sprintf("cairn restore %s:%s --target DIR", id.Short(), p)
}
