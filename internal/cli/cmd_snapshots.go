package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/repo"
)

func newSnapshotsCmd(g *Globals) *cobra.Command {
	var host string
	var tags []string
	c := &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSnapshots(cmd.Context(), g, host, tags)
		},
	}
	c.Flags().StringVar(&host, "host", "", "only snapshots of this host")
	c.Flags().StringArrayVar(&tags, "tag", nil, "only snapshots with this tag")
	return c
}

type snapshotJSON struct {
	ID       string        `json:"id"`
	ShortID  string        `json:"short_id"`
	Time     time.Time     `json:"time"`
	Host     string        `json:"host"`
	Username string        `json:"username,omitempty"`
	Paths    []string      `json:"paths"`
	Tags     []string      `json:"tags"`
	Tree     string        `json:"tree"`
	Parent   string        `json:"parent,omitempty"`
	Summary  *repo.Summary `json:"summary,omitempty"`
}

func toSnapshotJSON(s *repo.Snapshot) snapshotJSON {
	j := snapshotJSON{ID: s.ID.String(), ShortID: s.ID.Short(), Time: s.Time, Host: s.Host, Username: s.Username,
		Paths: s.Paths, Tags: s.Tags, Tree: s.Tree.String(), Summary: s.Summary}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if s.Parent != nil {
		j.Parent = s.Parent.String()
	}
	return j
}

func hasAllTags(s *repo.Snapshot, tags []string) bool {
	for _, t := range tags {
		found := false
		for _, st := range s.Tags {
			if st == t {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func runSnapshots(ctx context.Context, g *Globals, host string, tags []string) error {
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
	out := []snapshotJSON{}
	for _, s := range snaps {
		if (host != "" && s.Host != host) || !hasAllTags(s, tags) {
			continue
		}
		out = append(out, toSnapshotJSON(s))
	}
	if g.JSON {
		return g.printJSON(out)
	}
	tw := g.table()
	fmt.Fprintln(tw, "ID\tTime\tHost\tTags\tPaths\tSize")
	for _, s := range out {
		size := ""
		if s.Summary != nil {
			size = humanBytes(s.Summary.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ShortID, s.Time.Local().Format("2006-01-02 15:04:05"), s.Host,
			strings.Join(s.Tags, ","), strings.Join(s.Paths, ", "), size)
	}
	tw.Flush()
	g.printf("%d snapshots\n", len(out))
	return nil
}
