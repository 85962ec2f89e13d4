package cli

import "github.com/spf13/cobra"

// Placeholder until the run command lands; replaced by its real file.
func newRunCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "run", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
