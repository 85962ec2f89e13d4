package cli

import "github.com/spf13/cobra"

// Placeholder until the daemon command lands; replaced by its real file.
func newDaemonCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "daemon", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
