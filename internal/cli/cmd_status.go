package cli

import "github.com/spf13/cobra"

// Placeholder until the status command lands; replaced by its real file.
func newStatusCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "status", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
