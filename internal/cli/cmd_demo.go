package cli

import "github.com/spf13/cobra"

// Placeholder until the demo command lands; replaced by its real file.
func newDemoCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "demo", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
