package cli

import "github.com/spf13/cobra"

// Placeholder until the restore command lands; replaced by its real file.
func newRestoreCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "restore", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
