package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
)

func newLsCmd(g *Globals) *cobra.Command {
	var long bool
	c := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List the files of a snapshot",
		Long: `List every entry of a snapshot, or of the folder or file PATH inside it,
with its full path. SNAPSHOT is an ID, a unique prefix of one, or "latest".
With --json: one array of objects with path, type, size, mode and mtime.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p := ""
			if len(args) == 2 {
				var err error
				if p, err = snapshotPath(args[1]); err != nil {
					return err
				}
			}
			return runLs(cmd.Context(), g, args[0], p, long)
		},
	}
	c.Flags().BoolVarP(&long, "long", "l", false, "show mode, owner, size and time")
	return c
}

// walkTree calls fn for every entry below the tree id, depth first in name
// order; dir is the tree's own path.
func walkTree(ctx context.Context, r *repo.Repository, id crypto.ID, dir string, fn func(p string, n *repo.Node) error) error {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("folder %s: %w", dir, err)
	}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(dir, n.Name)
		if err := fn(p, n); err != nil {
			return err
		}
		if n.Subtree != nil {
			if err := walkTree(ctx, r, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// lsEntry is one line of `ls --json`. Paths that are not UTF-8 also come
// base64-encoded, so no byte is lost.
type lsEntry struct {
	Path       string    `json:"path"`
	PathB64    string    `json:"path_b64,omitempty"`
	Type       string    `json:"type"`
	Size       uint64    `json:"size"`
	Mode       string    `json:"mode"`
	MTime      time.Time `json:"mtime"`
	User       string    `json:"user,omitempty"`
	Group      string    `json:"group,omitempty"`
	UID        uint32    `json:"uid"`
	GID        uint32    `json:"gid"`
	LinkTarget string    `json:"link_target,omitempty"`
	LinkB64    string    `json:"link_target_b64,omitempty"`
}

func toLsEntry(p string, n *repo.Node) lsEntry {
	e := lsEntry{Path: p, Type: n.Type, Size: n.Size, Mode: fs.FileMode(n.Mode).String(), MTime: n.ModTime,
		User: n.User, Group: n.Group, UID: n.UID, GID: n.GID, LinkTarget: n.LinkTarget}
	e.PathB64, e.LinkB64 = b64IfNotUTF8(p), b64IfNotUTF8(n.LinkTarget)
	return e
}

// b64IfNotUTF8 returns s base64-encoded when JSON cannot carry it as it is
// (JSON strings are UTF-8), else "".
func b64IfNotUTF8(s string) string {
	if utf8.ValidString(s) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(s))
}

// jsonArray streams the elements of one JSON array.
type jsonArray struct {
	w     io.Writer
	count int
}

func (a *jsonArray) add(v any) error {
	b, err := json.MarshalIndent(v, "  ", "  ")
	if err != nil {
		return err
	}
	sep := ",\n  "
	if a.count == 0 {
		sep = "[\n  "
	}
	a.count++
	_, err = fmt.Fprintf(a.w, "%s%s", sep, b)
	return err
}

func (a *jsonArray) close() error {
	if a.count == 0 {
		_, err := io.WriteString(a.w, "[]\n")
		return err
	}
	_, err := io.WriteString(a.w, "\n]\n")
	return err
}

func runLs(ctx context.Context, g *Globals, ref, p string, long bool) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	snap, err := r.FindSnapshot(ctx, ref)
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return fmt.Errorf("load index: %w", err)
	}
	arr := &jsonArray{w: g.Stdout}
	tw := g.table()
	emit := func(p string, n *repo.Node) error {
		switch {
		case g.JSON:
			return arr.add(toLsEntry(p, n))
		case long:
			name := p
			if n.Type == repo.NodeSymlink {
				name += " -> " + n.LinkTarget
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", fs.FileMode(n.Mode), ownerName(n.User, n.UID), ownerName(n.Group, n.GID),
				strconv.FormatUint(n.Size, 10), n.ModTime.Local().Format("2006-01-02 15:04:05"), name)
		default:
			g.printf("%s\n", p)
		}
		return nil
	}
	root := snap.Tree
	dir := "/"
	if p != "" && p != "/" {
		chain, err := restore.FindPath(ctx, r, snap.Tree, p)
		if err != nil {
			return err
		}
		n := chain[len(chain)-1]
		if err := emit(p, n); err != nil {
			return err
		}
		if n.Subtree == nil {
			return finishLs(g, arr, tw)
		}
		root, dir = *n.Subtree, p
	}
	if err := walkTree(ctx, r, root, dir, emit); err != nil {
		return err
	}
	return finishLs(g, arr, tw)
}

func finishLs(g *Globals, arr *jsonArray, tw interface{ Flush() error }) error {
	if g.JSON {
		return arr.close()
	}
	return tw.Flush()
}

func ownerName(name string, id uint32) string {
	if name != "" {
		return name
	}
	return strconv.FormatUint(uint64(id), 10)
}
