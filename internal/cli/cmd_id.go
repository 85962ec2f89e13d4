package cli

import "github.com/spf13/cobra"

// Placeholder until the id command lands; replaced by its real file.
func newIDCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "id", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
