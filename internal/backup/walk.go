package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/fsmeta"
	"github.com/cairn-backup/cairn/internal/repo"
)

// trie arranges the source paths under a virtual root: /data/x and /home/u
// become root → data → x and root → home → u. A node with a real path is a
// backed-up path; the others are the folders above them.
type trie struct {
	real     string
	children map[string]*trie
}

func buildTrie(paths []string) *trie {
	root := &trie{children: map[string]*trie{}}
	for _, p := range paths {
		t := root
		parts := splitPath(p)
		for i, part := range parts {
			c, ok := t.children[part]
			if !ok {
				c = &trie{children: map[string]*trie{}}
				t.children[part] = c
			}
			t = c
			if i == len(parts)-1 {
				t.real = p
			}
		}
	}
	return root
}

// splitPath turns an absolute path into its components; a Windows volume
// ("C:") is the first component.
func splitPath(p string) []string {
	vol := filepath.VolumeName(p)
	rest := filepath.ToSlash(p[len(vol):])
	var parts []string
	if vol != "" {
		parts = append(parts, strings.TrimSuffix(vol, ":"))
	}
	for _, s := range strings.Split(rest, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return parts
}

func done(n *repo.Node, err error) <-chan result {
	ch := make(chan result, 1)
	ch <- result{n, err}
	return ch
}

// saveVirtualRoot saves the folders above the source paths, taking their
// metadata from the real folders, and the source paths below them.
func (a *archiver) saveVirtualRoot(ctx context.Context, t *trie, parent *crypto.ID) <-chan result {
	return a.saveTrie(ctx, t, "/", "", parent)
}

func (a *archiver) saveTrie(ctx context.Context, t *trie, dirPath, name string, parent *crypto.ID) <-chan result {
	var ptree *repo.Tree
	if parent != nil {
		ptree, _ = a.r.LoadTree(ctx, *parent) // no parent tree only costs a re-read
	}
	names := make([]string, 0, len(t.children))
	for n := range t.children {
		names = append(names, n)
	}
	sort.Strings(names)
	var chans []<-chan result
	for _, n := range names {
		c := t.children[n]
		var pn *repo.Node
		if ptree != nil {
			pn = ptree.Find(n)
		}
		childPath := filepath.Join(dirPath, n)
		if os.PathSeparator == '\\' && dirPath == "/" && len(n) == 1 {
			// On Windows the first component is a volume letter (see
			// splitPath): its real path is "C:\".
			childPath = n + `:\`
		}
		if c.real != "" {
			fi, err := os.Lstat(c.real)
			if err != nil {
				a.report(FileResult{Path: c.real, Status: StatusFailed, Err: err})
				continue
			}
			chans = append(chans, a.saveEntry(ctx, c.real, fi, pn))
			continue
		}
		var sub *crypto.ID
		if pn != nil && pn.Type == repo.NodeDir {
			sub = pn.Subtree
		}
		chans = append(chans, a.saveTrie(ctx, c, childPath, n, sub))
	}
	return a.finishDir(ctx, dirPath, name, chans, func() (*repo.Node, error) {
		if name == "" {
			return &repo.Node{Name: "/", Type: repo.NodeDir, Mode: uint32(fs.ModeDir | 0o755)}, nil
		}
		// Stat, not Lstat: a folder above a backed-up path may be reached
		// through a symlink (/var/run → /run); it holds the path, so it
		// is stored as the folder it leads to.
		fi, err := os.Stat(dirPath)
		if err != nil || !fi.IsDir() {
			return &repo.Node{Name: name, Type: repo.NodeDir, Mode: uint32(fs.ModeDir | 0o755)}, nil
		}
		return a.nodeFromInfo(dirPath, fi)
	})
}

// finishDir waits for the children, then saves the directory's tree.
func (a *archiver) finishDir(ctx context.Context, path, name string, chans []<-chan result, meta func() (*repo.Node, error)) <-chan result {
	out := make(chan result, 1)
	go func() {
		tree := &repo.Tree{Nodes: make([]*repo.Node, 0, len(chans))}
		for _, ch := range chans {
			res := <-ch
			if res.err != nil {
				out <- res
				return
			}
			if res.node != nil {
				tree.Nodes = append(tree.Nodes, res.node)
			}
		}
		node, err := meta()
		if err != nil {
			out <- result{err: err}
			return
		}
		a.saveMu.RLock()
		id, err := a.r.SaveTree(ctx, tree)
		a.saveMu.RUnlock()
		if err != nil {
			out <- result{err: fmt.Errorf("save tree of %s: %w", path, err)}
			return
		}
		node.Name = name
		node.Subtree = &id
		out <- result{node: node}
	}()
	return out
}

// saveEntry saves any kind of entry.
func (a *archiver) saveEntry(ctx context.Context, path string, fi fs.FileInfo, pn *repo.Node) <-chan result {
	if err := ctx.Err(); err != nil {
		return done(nil, err)
	}
	switch {
	case fi.IsDir():
		return a.saveDir(ctx, path, fi, pn)
	case fi.Mode().IsRegular():
		return a.saveFile(ctx, path, fi, pn)
	}
	node, err := a.nodeFromInfo(path, fi)
	if err != nil {
		a.report(FileResult{Path: path, Status: StatusFailed, Err: err})
		return done(nil, nil)
	}
	switch node.Type {
	case repo.NodeSymlink:
		a.links.Add(1)
	default:
		a.others.Add(1)
	}
	st := StatusNew
	if pn != nil {
		st = StatusChanged
		if pn.Type == node.Type && pn.LinkTarget == node.LinkTarget && pn.ModTime.Equal(node.ModTime) {
			st = StatusUnchanged
		}
	}
	a.report(FileResult{Path: path, Type: node.Type, Status: st})
	return done(node, nil)
}

func (a *archiver) saveDir(ctx context.Context, path string, fi fs.FileInfo, pn *repo.Node) <-chan result {
	a.dirs.Add(1)
	var ptree *repo.Tree
	if pn != nil && pn.Type == repo.NodeDir && pn.Subtree != nil {
		ptree, _ = a.r.LoadTree(ctx, *pn.Subtree)
	}
	var chans []<-chan result
	if !a.excl.excludedDir(path) {
		entries, err := readDirNames(path)
		if err != nil {
			a.report(FileResult{Path: path, Type: repo.NodeDir, Status: StatusFailed, Err: err})
		}
		for _, name := range entries {
			child := filepath.Join(path, name)
			cfi, err := os.Lstat(child)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted since the listing
				}
				a.report(FileResult{Path: child, Status: StatusFailed, Err: err})
				continue
			}
			if a.excl.excluded(child, name) {
				continue
			}
			var cpn *repo.Node
			if ptree != nil {
				cpn = ptree.Find(name)
			}
			chans = append(chans, a.saveEntry(ctx, child, cfi, cpn))
		}
	}
	return a.finishDir(ctx, path, filepath.Base(path), chans, func() (*repo.Node, error) {
		node, err := a.nodeFromInfo(path, fi)
		if err != nil {
			return nil, err
		}
		st := StatusNew
		if pn != nil {
			st = StatusUnchanged
		}
		a.report(FileResult{Path: path, Type: repo.NodeDir, Status: st})
		return node, nil
	})
}

func readDirNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// unchanged reports whether a file's metadata matches its node in the
// parent snapshot and all its content is still in the repository.
func (a *archiver) unchanged(fi fs.FileInfo, st fsmeta.Stat, pn *repo.Node) bool {
	if pn == nil || pn.Type != repo.NodeFile || a.opts.Full {
		return false
	}
	if pn.Size != uint64(fi.Size()) || !pn.ModTime.Equal(fi.ModTime()) || pn.Inode != st.Inode || !pn.ChangeTime.Equal(st.ChangeTime) {
		return false
	}
	for _, id := range pn.Content {
		if !a.r.HasBlob(id) {
			return false
		}
	}
	return true
}

func (a *archiver) saveFile(ctx context.Context, path string, fi fs.FileInfo, pn *repo.Node) <-chan result {
	a.files.Add(1)
	st := fsmeta.FromInfo(fi)
	if a.unchanged(fi, st, pn) {
		node, err := a.nodeFromInfo(path, fi)
		if err != nil {
			a.report(FileResult{Path: path, Type: repo.NodeFile, Status: StatusFailed, Err: err})
			return done(nil, nil)
		}
		node.Content = pn.Content
		a.bytes.Add(fi.Size())
		a.report(FileResult{Path: path, Type: repo.NodeFile, Size: fi.Size(), Hash: contentHash(node.Content), Status: StatusUnchanged})
		return done(node, nil)
	}
	out := make(chan result, 1)
	job := func(w *worker) {
		if ctx.Err() != nil {
			out <- result{err: ctx.Err()}
			return
		}
		a.current.Store(path)
		node, retried, err := a.readFile(ctx, w, path, fi)
		if err != nil {
			if ctx.Err() != nil {
				out <- result{err: ctx.Err()}
				return
			}
			var fatal fatalError
			if errors.As(err, &fatal) {
				out <- result{err: fatal.err}
				return
			}
			a.report(FileResult{Path: path, Type: repo.NodeFile, Size: fi.Size(), Status: StatusFailed, Retried: retried, Err: err})
			out <- result{}
			return
		}
		status := StatusNew
		if pn != nil {
			status = StatusChanged
			if pn.Type == repo.NodeFile && slices.Equal(pn.Content, node.Content) {
				status = StatusUnchanged
			}
		}
		res := FileResult{Path: path, Type: repo.NodeFile, Size: int64(node.Size), Hash: contentHash(node.Content), Status: status, Retried: retried}
		if node.Error != "" {
			res.Err = errors.New(node.Error)
		}
		a.report(res)
		out <- result{node: node}
	}
	select {
	case a.jobs <- job:
	case <-ctx.Done():
		return done(nil, ctx.Err())
	}
	return out
}

// fatalError marks a failure of the repository (not of one source file):
// the backup stops.
type fatalError struct{ err error }

func (f fatalError) Error() string { return f.err.Error() }

// ErrChangedWhileRead is recorded for a file that kept changing while it
// was read; the last version read is saved.
var ErrChangedWhileRead = errors.New("file changed while it was read")

// readFile reads and stores a file's content, re-reading it when it
// changed during the read.
func (a *archiver) readFile(ctx context.Context, w *worker, path string, fi fs.FileInfo) (*repo.Node, int, error) {
	retried := 0
	for {
		node, after, err := a.readOnce(ctx, w, path)
		if err != nil {
			return nil, retried, err
		}
		if after == nil || (after.Size() == int64(node.Size) && after.ModTime().Equal(node.ModTime)) {
			return node, retried, nil
		}
		if retried >= a.opts.ChangedRetries {
			// Keep what was read, and say so.
			node.Error = ErrChangedWhileRead.Error()
			return node, retried, nil
		}
		retried++
	}
}

// readOnce reads the file once. It returns the node (with the metadata
// from before the read) and the file's metadata after the read.
func (a *archiver) readOnce(ctx context.Context, w *worker, path string) (*repo.Node, fs.FileInfo, error) {
	f, err := openNoATime(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is no longer a regular file", path)
	}
	node, err := a.nodeFromInfo(path, before)
	if err != nil {
		return nil, nil, err
	}
	ch := w.chunker(f)
	var size int64
	for {
		c, err := ch.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		id := a.r.Keys().BlobID(c.Data)
		a.saveMu.RLock()
		added, err := a.r.SaveBlob(ctx, repo.DataBlob, id, c.Data)
		a.saveMu.RUnlock()
		if err != nil {
			return nil, nil, fatalError{fmt.Errorf("save %s: %w", path, err)}
		}
		if added {
			a.bytesAdded.Add(int64(len(c.Data)))
		}
		node.Content = append(node.Content, id)
		size += int64(len(c.Data))
		a.bytes.Add(int64(len(c.Data)))
	}
	node.Size = uint64(size)
	after, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if size != before.Size() && after.Size() == before.Size() && after.ModTime().Equal(before.ModTime()) {
		// Read a different length than stat said without a visible change
		// (e.g. /proc files): keep what was read.
		return node, nil, nil
	}
	return node, after, nil
}

// nodeFromInfo builds the metadata of a tree node.
func (a *archiver) nodeFromInfo(path string, fi fs.FileInfo) (*repo.Node, error) {
	st := fsmeta.FromInfo(fi)
	n := &repo.Node{
		Name: filepath.Base(path), Mode: uint32(fi.Mode()), ModTime: fi.ModTime(),
		AccessTime: st.AccessTime, ChangeTime: st.ChangeTime, UID: st.UID, GID: st.GID,
		Inode: st.Inode, DeviceID: st.Dev, Links: st.Links,
	}
	n.User, n.Group = a.names(st.UID, st.GID)
	m := fi.Mode()
	switch {
	case m.IsRegular():
		n.Type = repo.NodeFile
		n.Size = uint64(fi.Size())
	case m.IsDir():
		n.Type = repo.NodeDir
		// A folder's link count follows its subfolders and its access time
		// changes whenever it is listed, by this backup too: keeping either
		// would make every tree differ from its parent's on every run.
		n.Links = 0
		n.AccessTime = time.Time{}
	case m&fs.ModeSymlink != 0:
		n.Type = repo.NodeSymlink
		t, err := os.Readlink(path)
		if err != nil {
			return nil, err
		}
		n.LinkTarget = t
	case m&fs.ModeNamedPipe != 0:
		n.Type = repo.NodeFIFO
	case m&fs.ModeSocket != 0:
		n.Type = repo.NodeSocket
	case m&fs.ModeCharDevice != 0:
		n.Type = repo.NodeChar
		n.Rdev = st.Rdev
	case m&fs.ModeDevice != 0:
		n.Type = repo.NodeDevice
		n.Rdev = st.Rdev
	default:
		return nil, fmt.Errorf("%s: unknown file type %v", path, m.Type())
	}
	if xs, err := fsmeta.Xattrs(path); err == nil && len(xs) > 0 {
		names := make([]string, 0, len(xs))
		for k := range xs {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			n.Xattrs = append(n.Xattrs, repo.Xattr{Name: k, Value: xs[k]})
		}
	}
	return n, nil
}

func (a *archiver) names(uid, gid uint32) (string, string) {
	a.uidMu.Lock()
	defer a.uidMu.Unlock()
	u, ok := a.users[uid]
	if !ok {
		if x, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
			u = x.Username
		}
		a.users[uid] = u
	}
	g, ok := a.groups[gid]
	if !ok {
		if x, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
			g = x.Name
		}
		a.groups[gid] = g
	}
	return u, g
}
