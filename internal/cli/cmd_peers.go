package cli

import "github.com/spf13/cobra"

// Placeholder until the peers command lands; replaced by its real file.
func newPeersCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "peers", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
