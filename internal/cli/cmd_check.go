package cli

import "github.com/spf13/cobra"

// Placeholder until the check command lands; replaced by its real file.
func newCheckCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "check", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
