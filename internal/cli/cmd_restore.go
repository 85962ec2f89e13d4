package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/backup"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
)

type restoreOptions struct {
	target    string
	dryRun    bool
	overwrite bool
	verify    bool
	workers   int
}

func newRestoreCmd(g *Globals) *cobra.Command {
	var o restoreOptions
	c := &cobra.Command{
		Use:   "restore SNAPSHOT[:PATH] --target DIR",
		Short: "Restore a snapshot, a folder or one file",
		Long: `Restore a snapshot, or the folder or file PATH inside it, below DIR.

Paths keep their full path: a backup of /data/x restores to DIR/data/x.
SNAPSHOT is an ID, a unique prefix of one, or "latest". Each file is written
to a temporary name and renamed into place; an existing file with the same
content is left alone, and one newer than the snapshot's version is kept
unless --overwrite is given. Damaged data is never written: the file is
reported and the exit code is non-zero.`,
		Example: `  cairn restore latest --target /tmp/r
  cairn restore 3f2a9c1b:/home/me/notes.txt --target / --overwrite
  cairn restore latest:/data --target /mnt/new --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd.Context(), g, o, args[0])
		},
	}
	f := c.Flags()
	f.StringVarP(&o.target, "target", "t", "", "restore below this `DIR` (required)")
	f.BoolVarP(&o.dryRun, "dry-run", "n", false, "show what would be created, overwritten or skipped; write nothing")
	f.BoolVar(&o.overwrite, "overwrite", false, "replace existing files even when they are newer than the snapshot's")
	f.BoolVar(&o.verify, "verify", false, "read each file back and check it before it is put in place")
	f.IntVar(&o.workers, "workers", 0, "files written at once (default: 2 × CPUs)")
	return c
}

// splitSnapshotArg splits SNAPSHOT[:PATH]; a relative PATH is taken from
// the current folder, as backup stores absolute paths.
func splitSnapshotArg(arg string) (ref, path string, err error) {
	ref, path, _ = strings.Cut(arg, ":")
	if ref == "" {
		return "", "", errors.Join(ErrUsage, fmt.Errorf("no snapshot in %q (use SNAPSHOT or SNAPSHOT:PATH)", arg))
	}
	if path != "" {
		path, err = snapshotPath(path)
	}
	return ref, path, err
}

// snapshotPath turns a path given on the command line into the absolute,
// slash-separated path it has inside snapshots.
func snapshotPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("path %s: %w", p, err)
		}
		p = abs
	}
	if vol := filepath.VolumeName(p); vol != "" {
		// C:\x is stored as /C/x.
		p = "/" + strings.TrimSuffix(vol, ":") + p[len(vol):]
	}
	return filepath.ToSlash(p), nil
}

type restoreJSON struct {
	SnapshotID string `json:"snapshot_id"`
	Path       string `json:"path,omitempty"`
	Target     string `json:"target"`
	restore.Summary
	Entries []restoreEntryJSON `json:"entries,omitempty"`
}

type restoreEntryJSON struct {
	Path    string `json:"path"`
	PathB64 string `json:"path_b64,omitempty"`
	Type    string `json:"type"`
	Action  string `json:"action"`
	Size    int64  `json:"size,omitempty"`
	Link    string `json:"link,omitempty"`
}

func runRestore(ctx context.Context, g *Globals, o restoreOptions, arg string) error {
	if o.target == "" {
		return errors.Join(ErrUsage, errors.New("say where to restore with --target DIR (e.g. --target / to put files back where they were)"))
	}
	ref, path, err := splitSnapshotArg(arg)
	if err != nil {
		return err
	}
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	snap, err := r.FindSnapshot(ctx, ref)
	if err != nil {
		return err
	}
	target, err := filepath.Abs(o.target)
	if err != nil {
		return err
	}
	opts := restore.Options{
		Target: target, Include: path, DryRun: o.dryRun, Overwrite: o.overwrite,
		Verify: o.verify, Workers: o.workers,
	}
	var mu sync.Mutex
	var entries []restoreEntryJSON
	if o.dryRun {
		opts.OnEntry = func(e restore.Entry) {
			if g.JSON {
				entries = append(entries, restoreEntryJSON{Path: e.Path, PathB64: b64IfNotUTF8(e.Path), Type: e.Type, Action: string(e.Action), Size: e.Size, Link: e.Link})
				return
			}
			if e.Action == restore.ActionExisting {
				return // folders that are there already: nothing changes
			}
			mu.Lock()
			defer mu.Unlock()
			g.printf("%-16s %s\n", e.Action, describeEntry(e))
		}
	}
	var line *statusLine
	if !o.dryRun && !g.Quiet && !g.JSON && g.stderrIsTerminal() {
		line = &statusLine{w: g.Stderr}
		opts.OnProgress = func(p restore.Progress) {
			mu.Lock()
			line.set(restoreProgressText(p))
			mu.Unlock()
		}
	}
	sum, err := restore.Run(ctx, r, snap, opts)
	if line != nil {
		mu.Lock()
		line.clear()
		mu.Unlock()
	}
	if sum == nil {
		if errors.Is(err, restore.ErrNotFound) {
			return fmt.Errorf("%w (list the snapshot with: cairn ls %s)", err, snap.ID.Short())
		}
		return fmt.Errorf("restore: %w", err)
	}
	if g.JSON {
		if jerr := g.printJSON(restoreJSON{SnapshotID: snap.ID.String(), Path: path, Target: target, Summary: *sum, Entries: entries}); jerr != nil {
			return jerr
		}
	} else {
		for _, e := range sum.Errors {
			fmt.Fprintf(g.Stderr, "error: %s\n", e.Message)
		}
		if sum.Failed > len(sum.Errors) {
			fmt.Fprintf(g.Stderr, "error: ... and %d more\n", sum.Failed-len(sum.Errors))
		}
		verb := "restored"
		if o.dryRun {
			verb = "would restore"
		}
		g.printf("snapshot %s %s to %s\n", snap.ID.Short(), verb, target)
		g.printf("  %d files, %d folders, %d symlinks, %d hard links, %d others; %s\n",
			sum.Files, sum.Dirs, sum.Symlinks, sum.Hardlinks, sum.Others, humanBytes(sum.Bytes))
		g.printf("  %d created, %d overwritten, %d identical, %d newer kept", sum.Created, sum.Overwritten, sum.SkippedIdentical, sum.SkippedNewer)
		if sum.Unsupported > 0 {
			g.printf(", %d not supported here", sum.Unsupported)
		}
		if sum.Failed > 0 {
			g.printf(", %d failed", sum.Failed)
		}
		g.printf("\n")
		if !o.dryRun {
			g.printf("  in %s\n", humanDuration(sum.Duration))
		}
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	return nil
}

func describeEntry(e restore.Entry) string {
	s := e.Path
	switch {
	case e.Link != "":
		s += " (hard link to " + e.Link + ")"
	case e.Type == repo.NodeDir:
		s += "/"
	case e.Type == repo.NodeFile:
		s += " (" + humanBytes(e.Size) + ")"
	case e.Type != "":
		s += " (" + e.Type + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// restoreProgressText shows restore progress in backup's format.
func restoreProgressText(p restore.Progress) string {
	return progressText(backup.Progress{Files: p.Files, Dirs: p.Dirs, Bytes: p.Bytes, TotalBytes: p.TotalBytes,
		ScanDone: true, Errors: p.Errors, Elapsed: p.Elapsed})
}
