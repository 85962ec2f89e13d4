package cli

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"slices"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
)

func newDiffCmd(g *Globals) *cobra.Command {
	var withMeta bool
	c := &cobra.Command{
		Use:   "diff SNAP1 SNAP2",
		Short: "Show what changed between two snapshots",
		Long: `List the paths added, removed and modified from SNAP1 to SNAP2. A path is
modified when its content, link target or type changed; with --metadata, also
when only its mode, owner or modification time did. Folders whose contents
are identical are skipped without being read.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDiff(cmd.Context(), g, args[0], args[1], withMeta)
		},
	}
	c.Flags().BoolVar(&withMeta, "metadata", false, "also list entries whose metadata alone changed")
	return c
}

// Kinds of change.
const (
	changeAdded    = "added"
	changeRemoved  = "removed"
	changeModified = "modified"
	changeMetadata = "metadata"
)

type diffEntry struct {
	Path    string  `json:"path"`
	PathB64 string  `json:"path_b64,omitempty"`
	Change  string  `json:"change"`
	Type    string  `json:"type"`
	Before  *uint64 `json:"size_before,omitempty"`
	After   *uint64 `json:"size_after,omitempty"`
}

type diffJSON struct {
	From     string      `json:"from"`
	To       string      `json:"to"`
	Changes  []diffEntry `json:"changes"`
	Added    int         `json:"added"`
	Removed  int         `json:"removed"`
	Modified int         `json:"modified"`
	Metadata int         `json:"metadata"`
}

type differ struct {
	r        *repo.Repository
	withMeta bool
	emit     func(diffEntry) error
}

func runDiff(ctx context.Context, g *Globals, ref1, ref2 string, withMeta bool) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	s1, err := r.FindSnapshot(ctx, ref1)
	if err != nil {
		return err
	}
	s2, err := r.FindSnapshot(ctx, ref2)
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return fmt.Errorf("load index: %w", err)
	}
	out := diffJSON{From: s1.ID.String(), To: s2.ID.String(), Changes: []diffEntry{}}
	d := &differ{r: r, withMeta: withMeta, emit: func(e diffEntry) error {
		switch e.Change {
		case changeAdded:
			out.Added++
		case changeRemoved:
			out.Removed++
		case changeModified:
			out.Modified++
		case changeMetadata:
			out.Metadata++
		}
		if g.JSON {
			e.PathB64 = b64IfNotUTF8(e.Path)
			out.Changes = append(out.Changes, e)
			return nil
		}
		mark := map[string]string{changeAdded: "+", changeRemoved: "-", changeModified: "M", changeMetadata: "U"}[e.Change]
		suffix := ""
		if e.Type == repo.NodeDir {
			suffix = "/"
		}
		g.printf("%s %s%s\n", mark, e.Path, suffix)
		return nil
	}}
	if err := d.trees(ctx, "/", &s1.Tree, &s2.Tree); err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(out)
	}
	g.printf("\n%d added, %d removed, %d modified", out.Added, out.Removed, out.Modified)
	if withMeta {
		g.printf(", %d with changed metadata", out.Metadata)
	}
	g.printf(" (%s → %s)\n", s1.ID.Short(), s2.ID.Short())
	return nil
}

// trees compares two folder listings; either may be nil (absent).
// Identical subtrees are equal by ID and are not read.
func (d *differ) trees(ctx context.Context, dir string, a, b *crypto.ID) error {
	if a != nil && b != nil && *a == *b {
		return nil
	}
	load := func(id *crypto.ID) ([]*repo.Node, error) {
		if id == nil {
			return nil, nil
		}
		t, err := d.r.LoadTree(ctx, *id)
		if err != nil {
			return nil, fmt.Errorf("folder %s: %w", dir, err)
		}
		return t.Nodes, nil
	}
	na, err := load(a)
	if err != nil {
		return err
	}
	nb, err := load(b)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(na) || j < len(nb) {
		if err := ctx.Err(); err != nil {
			return err
		}
		var x, y *repo.Node
		switch {
		case j >= len(nb) || (i < len(na) && na[i].Name < nb[j].Name):
			x = na[i]
			i++
		case i >= len(na) || nb[j].Name < na[i].Name:
			y = nb[j]
			j++
		default:
			x, y = na[i], nb[j]
			i++
			j++
		}
		if err := d.node(ctx, dir, x, y); err != nil {
			return err
		}
	}
	return nil
}

func subtree(n *repo.Node) *crypto.ID {
	if n == nil {
		return nil
	}
	return n.Subtree
}

func sizePtr(n *repo.Node) *uint64 {
	if n == nil || n.Type != repo.NodeFile {
		return nil
	}
	s := n.Size
	return &s
}

// node compares one name present in either or both listings.
func (d *differ) node(ctx context.Context, dir string, a, b *repo.Node) error {
	name := a
	if name == nil {
		name = b
	}
	p := path.Join(dir, name.Name)
	switch {
	case a == nil:
		if err := d.emit(diffEntry{Path: p, Change: changeAdded, Type: b.Type, After: sizePtr(b)}); err != nil {
			return err
		}
		return d.trees(ctx, p, nil, subtree(b))
	case b == nil:
		if err := d.emit(diffEntry{Path: p, Change: changeRemoved, Type: a.Type, Before: sizePtr(a)}); err != nil {
			return err
		}
		return d.trees(ctx, p, subtree(a), nil)
	case a.Type != b.Type:
		// A different kind of entry: the old one and all below it went.
		if err := d.node(ctx, dir, a, nil); err != nil {
			return err
		}
		return d.node(ctx, dir, nil, b)
	case a.Subtree != nil || b.Subtree != nil:
		if d.withMeta && metaChanged(a, b) {
			if err := d.emit(diffEntry{Path: p, Change: changeMetadata, Type: a.Type}); err != nil {
				return err
			}
		}
		return d.trees(ctx, p, subtree(a), subtree(b))
	case !slices.Equal(a.Content, b.Content) || a.LinkTarget != b.LinkTarget || a.Rdev != b.Rdev:
		return d.emit(diffEntry{Path: p, Change: changeModified, Type: b.Type, Before: sizePtr(a), After: sizePtr(b)})
	case d.withMeta && metaChanged(a, b):
		return d.emit(diffEntry{Path: p, Change: changeMetadata, Type: b.Type, Before: sizePtr(a), After: sizePtr(b)})
	}
	return nil
}

func metaChanged(a, b *repo.Node) bool {
	return fs.FileMode(a.Mode) != fs.FileMode(b.Mode) || !a.ModTime.Equal(b.ModTime) || a.UID != b.UID || a.GID != b.GID
}
