package cli

import "github.com/spf13/cobra"

// Placeholder until the source command lands; replaced by its real file.
func newSourceCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "source", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
