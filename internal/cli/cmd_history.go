package cli

import "github.com/spf13/cobra"

// Placeholder until the history command lands; replaced by its real file.
func newHistoryCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "history", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
