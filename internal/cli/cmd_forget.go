package cli

import "github.com/spf13/cobra"

// Placeholder until the forget command lands; replaced by its real file.
func newForgetCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "forget", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
