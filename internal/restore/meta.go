package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cairn-backup/cairn/internal/fsmeta"
	"github.com/cairn-backup/cairn/internal/repo"
)

// Unix file type bits for mknod; the same on Linux and the BSDs.
const (
	sIFCHR = 0o020000
	sIFBLK = 0o060000
)

// modeBits are the permission and special bits chmod sets.
func modeBits(n *repo.Node) fs.FileMode {
	return fs.FileMode(n.Mode) & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// unixPerm turns modeBits into the numeric form mknod and mkfifo take.
func unixPerm(n *repo.Node) uint32 {
	m := modeBits(n)
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// applyMeta sets owner (as root), extended attributes, mode and times of
// the entry at p, in an order where one does not undo another: chown
// clears set-user-ID bits, and a read-only mode would refuse xattrs.
func (rs *restorer) applyMeta(p string, n *repo.Node) error {
	var errs []error
	if rs.root {
		if err := fsmeta.Lchown(p, int(n.UID), int(n.GID)); err != nil {
			errs = append(errs, fmt.Errorf("set owner: %w", err))
		}
	}
	for _, x := range n.Xattrs {
		if err := fsmeta.SetXattr(p, x.Name, x.Value); err != nil {
			errs = append(errs, fmt.Errorf("set xattr %s: %w", x.Name, err))
		}
	}
	if n.Type != repo.NodeSymlink {
		if err := os.Chmod(p, modeBits(n)); err != nil {
			errs = append(errs, fmt.Errorf("set mode: %w", err))
		}
	}
	if !n.ModTime.IsZero() {
		at := n.AccessTime
		if at.IsZero() {
			at = n.ModTime
		}
		if err := fsmeta.Lutimes(p, at, n.ModTime); err != nil {
			errs = append(errs, fmt.Errorf("set times: %w", err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("metadata: %w", errors.Join(errs...))
	}
	return nil
}

// special restores a symlink, FIFO or device node: made under a temporary
// name, given its metadata, renamed into place.
func (rs *restorer) special(parent *dirState, n *repo.Node, p string) {
	action := ActionCreate
	fi, err := lstat(parent, p)
	switch {
	case err == nil && fi.IsDir():
		rs.fail(p, n.Type, errors.New("a folder is in the way"))
		return
	case err == nil:
		if rs.sameSpecial(p, fi, n) {
			rs.report(Entry{Path: p, Type: n.Type, Action: ActionSkipIdentical})
			return
		}
		if rs.newer(fi, n) {
			rs.report(Entry{Path: p, Type: n.Type, Action: ActionSkipNewer})
			return
		}
		action = ActionOverwrite
	case !errors.Is(err, fs.ErrNotExist):
		rs.fail(p, n.Type, err)
		return
	}
	if (n.Type == repo.NodeDevice || n.Type == repo.NodeChar) && !rs.root {
		rs.report(Entry{Path: p, Type: n.Type, Action: ActionSkipUnsupported})
		return
	}
	if rs.opts.DryRun {
		rs.report(Entry{Path: p, Type: n.Type, Action: action})
		return
	}
	tmp := tempPath(parent.path)
	switch n.Type {
	case repo.NodeSymlink:
		err = os.Symlink(n.LinkTarget, tmp)
	case repo.NodeFIFO:
		err = fsmeta.Mkfifo(tmp, unixPerm(n))
	case repo.NodeDevice:
		err = fsmeta.Mknod(tmp, sIFBLK|unixPerm(n), n.Rdev)
	case repo.NodeChar:
		err = fsmeta.Mknod(tmp, sIFCHR|unixPerm(n), n.Rdev)
	}
	if err != nil {
		rs.fail(p, n.Type, fmt.Errorf("create: %w", err))
		return
	}
	metaErr := rs.applyMeta(tmp, n)
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		rs.fail(p, n.Type, fmt.Errorf("rename into place: %w", err))
		return
	}
	if metaErr != nil {
		rs.fail(p, n.Type, metaErr)
		return
	}
	rs.report(Entry{Path: p, Type: n.Type, Action: action})
}

// sameSpecial reports whether the entry on disk is already what n
// describes: a symlink to the same target, a FIFO, the same device.
func (rs *restorer) sameSpecial(p string, fi fs.FileInfo, n *repo.Node) bool {
	m := fi.Mode()
	switch n.Type {
	case repo.NodeSymlink:
		if m&fs.ModeSymlink == 0 {
			return false
		}
		t, err := os.Readlink(p)
		return err == nil && t == n.LinkTarget
	case repo.NodeFIFO:
		return m&fs.ModeNamedPipe != 0
	case repo.NodeDevice:
		return m&fs.ModeDevice != 0 && m&fs.ModeCharDevice == 0 && fsmeta.FromInfo(fi).Rdev == n.Rdev
	case repo.NodeChar:
		return m&fs.ModeCharDevice != 0 && fsmeta.FromInfo(fi).Rdev == n.Rdev
	}
	return false
}
