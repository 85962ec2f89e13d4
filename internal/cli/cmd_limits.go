package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/p2p"
	"github.com/cairn-backup/cairn/internal/schedule"
)

type limitsJSON struct {
	Up        string `json:"up"`
	Down      string `json:"down"`
	PeerUp    string `json:"peer_up"`
	PeerDown  string `json:"peer_down"`
	WANWindow string `json:"wan_window"`
}

func newLimitsCmd(g *Globals) *cobra.Command {
	var up, down, peerUp, peerDown, window string
	c := &cobra.Command{
		Use:   "limits",
		Short: "Show or set bandwidth limits and the time window for traffic to peers outside the LAN",
		Long: `Without flags, show the node's limits. Rates are like 2MB/s, 500KiB/s,
10Mbit/s or 0 for unlimited; --up and --down cover all peers together,
--peer-up and --peer-down each peer. --wan-window limits when backups are
placed on peers outside the LAN (e.g. 22:00-06:00; "always" clears it);
peers on the LAN and restores are never held back by the window. A source's
own --limit-up and --window apply on top (cairn source add).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := g.home()
			if err != nil {
				return err
			}
			if err := h.Ensure(); err != nil {
				return err
			}
			st, err := p2p.LoadSettings(h)
			if err != nil {
				return err
			}
			set := func(flag, val string, dst *int64) error {
				if !cmd.Flags().Changed(flag) {
					return nil
				}
				v, err := schedule.ParseRate(val)
				if err != nil {
					return fmt.Errorf("%w: --%s: %v", ErrUsage, flag, err)
				}
				*dst = v
				return nil
			}
			for _, f := range []struct {
				name, val string
				dst       *int64
			}{{"up", up, &st.LimitUp}, {"down", down, &st.LimitDown}, {"peer-up", peerUp, &st.PeerLimitUp}, {"peer-down", peerDown, &st.PeerLimitDown}} {
				if err := set(f.name, f.val, f.dst); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("wan-window") {
				if window == "always" {
					window = ""
				}
				if _, err := schedule.ParseWindow(window); err != nil {
					return fmt.Errorf("%w: --wan-window: %v", ErrUsage, err)
				}
				st.WANWindow = window
			}
			if cmd.Flags().NFlag() > 0 {
				if err := p2p.SaveSettings(h, st); err != nil {
					return err
				}
			}
			out := limitsJSON{Up: schedule.FormatRate(st.LimitUp), Down: schedule.FormatRate(st.LimitDown),
				PeerUp: schedule.FormatRate(st.PeerLimitUp), PeerDown: schedule.FormatRate(st.PeerLimitDown), WANWindow: st.WANWindow}
			if out.WANWindow == "" {
				out.WANWindow = "always"
			}
			if g.JSON {
				return g.printJSON(out)
			}
			tw := g.table()
			fmt.Fprintf(tw, "upload, all peers\t%s\n", out.Up)
			fmt.Fprintf(tw, "download, all peers\t%s\n", out.Down)
			fmt.Fprintf(tw, "upload, each peer\t%s\n", out.PeerUp)
			fmt.Fprintf(tw, "download, each peer\t%s\n", out.PeerDown)
			fmt.Fprintf(tw, "placement on WAN peers\t%s\n", out.WANWindow)
			return tw.Flush()
		},
	}
	f := c.Flags()
	f.StringVar(&up, "up", "", "upload limit for all peers together (`RATE`)")
	f.StringVar(&down, "down", "", "download limit for all peers together (`RATE`)")
	f.StringVar(&peerUp, "peer-up", "", "upload limit for each peer (`RATE`)")
	f.StringVar(&peerDown, "peer-down", "", "download limit for each peer (`RATE`)")
	f.StringVar(&window, "wan-window", "", "when to place on peers outside the LAN (`SPEC`, e.g. 22:00-06:00, or always)")
	return c
}
