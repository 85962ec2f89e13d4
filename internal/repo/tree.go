package repo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/cairn-backup/cairn/internal/crypto"
)

// Node types.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
	NodeFIFO    = "fifo"
	NodeDevice  = "device"
	NodeChar    = "chardev"
	NodeSocket  = "socket"
)

// Xattr is one extended attribute.
type Xattr struct {
	Name  string `json:"-"`
	Value []byte `json:"value"`
}

type xattrJSON struct {
	Name    string `json:"name,omitempty"`
	NameB64 string `json:"name_b64,omitempty"`
	Value   []byte `json:"value"`
}

// MarshalJSON implements json.Marshaler: names that are not UTF-8 travel
// base64-encoded, as node names do.
func (x Xattr) MarshalJSON() ([]byte, error) {
	j := xattrJSON{Value: x.Value}
	j.Name, j.NameB64 = splitBytes(x.Name)
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler.
func (x *Xattr) UnmarshalJSON(b []byte) error {
	var j xattrJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	name, err := joinBytes(j.Name, j.NameB64)
	if err != nil {
		return err
	}
	*x = Xattr{Name: name, Value: j.Value}
	return nil
}

// Node is one entry of a directory.
type Node struct {
	Name       string      `json:"-"`
	Type       string      `json:"type"`
	Mode       uint32      `json:"mode"` // io/fs.FileMode permission and special bits
	ModTime    time.Time   `json:"mtime"`
	AccessTime time.Time   `json:"atime,omitzero"`
	ChangeTime time.Time   `json:"ctime,omitzero"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	User       string      `json:"user,omitempty"`
	Group      string      `json:"group,omitempty"`
	Inode      uint64      `json:"inode,omitempty"`
	DeviceID   uint64      `json:"device_id,omitempty"` // st_dev, with Inode identifies hardlinks
	Links      uint64      `json:"links,omitempty"`
	Rdev       uint64      `json:"rdev,omitempty"`
	Size       uint64      `json:"size,omitempty"`
	Content    []crypto.ID `json:"content,omitempty"`
	Subtree    *crypto.ID  `json:"subtree,omitempty"`
	LinkTarget string      `json:"-"`
	Xattrs     []Xattr     `json:"xattrs,omitempty"`
	// Error is set when the entry could not be read completely.
	Error string `json:"error,omitempty"`
}

// Names and link targets are byte strings on Unix and need not be UTF-8.
// JSON strings must be, so such values travel base64-encoded in a sibling
// field.
type nodeJSON struct {
	Name          string `json:"name,omitempty"`
	NameB64       string `json:"name_b64,omitempty"`
	LinkTarget    string `json:"linktarget,omitempty"`
	LinkTargetB64 string `json:"linktarget_b64,omitempty"`
	*nodeAlias
}

type nodeAlias Node

func splitBytes(s string) (plain, b64 string) {
	if utf8.ValidString(s) {
		return s, ""
	}
	return "", base64.StdEncoding.EncodeToString([]byte(s))
}

func joinBytes(plain, b64 string) (string, error) {
	if b64 == "" {
		return plain, nil
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	return string(b), err
}

// MarshalJSON implements json.Marshaler.
func (n Node) MarshalJSON() ([]byte, error) {
	// Owner names come from the system's user database and may, rarely,
	// not be UTF-8 either: keep them only when they survive JSON intact.
	if !utf8.ValidString(n.User) {
		n.User = ""
	}
	if !utf8.ValidString(n.Group) {
		n.Group = ""
	}
	j := nodeJSON{nodeAlias: (*nodeAlias)(&n)}
	j.Name, j.NameB64 = splitBytes(n.Name)
	j.LinkTarget, j.LinkTargetB64 = splitBytes(n.LinkTarget)
	return json.Marshal(j)
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Node) UnmarshalJSON(b []byte) error {
	j := nodeJSON{nodeAlias: (*nodeAlias)(n)}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	var err error
	if n.Name, err = joinBytes(j.Name, j.NameB64); err != nil {
		return err
	}
	n.LinkTarget, err = joinBytes(j.LinkTarget, j.LinkTargetB64)
	return err
}

// Tree is a directory listing, sorted by name.
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// Find returns the node with the given name.
func (t *Tree) Find(name string) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return t.Nodes[i].Name >= name })
	if i < len(t.Nodes) && t.Nodes[i].Name == name {
		return t.Nodes[i]
	}
	return nil
}

// Sort orders the nodes by name.
func (t *Tree) Sort() {
	sort.Slice(t.Nodes, func(a, b int) bool { return t.Nodes[a].Name < t.Nodes[b].Name })
}

// EncodeTree serializes a tree.
func EncodeTree(t *Tree) ([]byte, error) {
	if t.Nodes == nil {
		t.Nodes = []*Node{}
	}
	return json.Marshal(t)
}

// DecodeTree parses a serialized tree and checks names are usable.
func DecodeTree(b []byte) (*Tree, error) {
	var t Tree
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%w: tree: %v", ErrCorrupt, err)
	}
	for i, n := range t.Nodes {
		if n == nil || n.Name == "" || n.Name == "." || n.Name == ".." || containsSlashOrNul(n.Name) {
			return nil, fmt.Errorf("%w: tree: bad entry name", ErrCorrupt)
		}
		if i > 0 && t.Nodes[i-1].Name >= n.Name {
			return nil, fmt.Errorf("%w: tree: entries not sorted or duplicated", ErrCorrupt)
		}
		if n.Type == NodeDir && n.Subtree == nil {
			return nil, fmt.Errorf("%w: tree: directory %q without subtree", ErrCorrupt, n.Name)
		}
	}
	return &t, nil
}

func containsSlashOrNul(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' || s[i] == 0 {
			return true
		}
	}
	return false
}

// SaveTree stores a tree blob and returns its ID.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (crypto.ID, error) {
	t.Sort()
	b, err := EncodeTree(t)
	if err != nil {
		return crypto.ID{}, err
	}
	id := r.keys.BlobID(b)
	if _, err := r.SaveBlob(ctx, TreeBlob, id, b); err != nil {
		return id, err
	}
	return id, nil
}

// LoadTree reads a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id crypto.ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), err)
	}
	return t, nil
}

// ContentHash identifies a file's content across snapshots and in the
// catalog: the SHA-256 of its blob IDs in order (for a symlink, followed
// by its target). Keyed blob IDs make it reveal nothing about the content
// to someone without the keys.
func ContentHash(n *Node) crypto.ID {
	b := make([]byte, 0, len(n.Content)*crypto.IDSize+len(n.LinkTarget))
	for _, id := range n.Content {
		b = append(b, id[:]...)
	}
	if n.Type == NodeSymlink {
		b = append(b, n.LinkTarget...)
	}
	return crypto.Hash(b)
}
