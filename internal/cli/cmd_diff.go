package cli

import "github.com/spf13/cobra"

// Placeholder until the diff command lands; replaced by its real file.
func newDiffCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "diff", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
