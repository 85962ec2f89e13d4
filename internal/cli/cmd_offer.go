package cli

import "github.com/spf13/cobra"

// Placeholder until the offer command lands; replaced by its real file.
func newOfferCmd(g *Globals) *cobra.Command {
	return &cobra.Command{Use: "offer", Hidden: true, RunE: func(*cobra.Command, []string) error { return errNotYet }}
}
