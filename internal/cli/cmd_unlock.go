package cli

import "github.com/spf13/cobra"

// Placeholder until the unlock command lands; replaced by its real file.
func newUnlockCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "unlock", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
