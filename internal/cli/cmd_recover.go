package cli

import "github.com/spf13/cobra"

// Placeholder until the recover command lands; replaced by its real file.
func newRecoverCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "recover", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
