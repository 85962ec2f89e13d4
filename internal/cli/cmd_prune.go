package cli

import "github.com/spf13/cobra"

// Placeholder until the prune command lands; replaced by its real file.
func newPruneCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "prune", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
