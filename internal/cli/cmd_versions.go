package cli

import "github.com/spf13/cobra"

// Placeholder until the versions command lands; replaced by its real file.
func newVersionsCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "versions", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
