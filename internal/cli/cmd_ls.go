package cli

import "github.com/spf13/cobra"

// Placeholder until the ls command lands; replaced by its real file.
func newLsCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "ls", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
