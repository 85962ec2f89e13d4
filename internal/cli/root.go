// Package cli builds cairn's command line: one file per command, each with
// an options struct and a run function. Commands print through the
// printer in output.go (text for people, JSON with --json) and never choose
// exit codes: cmd/cairn maps errors to them.
package cli

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// Globals are the options every command shares, and the process's
// environment, passed in rather than read from globals so tests can run the
// CLI in-process.
type Globals struct {
	Home         string
	Repo         string
	PasswordFile string
	JSON         bool
	Quiet        bool

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// ErrPartial is returned when a command did its job but skipped some items
// (unreadable files): exit code 3.
var ErrPartial = errors.New("partial")

// ErrUsage wraps errors in the command's arguments: exit code 2.
var ErrUsage = errors.New("usage")

// NewRoot builds the root command.
func NewRoot(g *Globals) *cobra.Command {
	if g.Getenv == nil {
		g.Getenv = os.Getenv
	}
	root := &cobra.Command{
		Use:           "cairn",
		Short:         "Encrypted, deduplicated backups onto the machines of people you trust",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(g.Stdin)
	root.SetOut(g.Stdout)
	root.SetErr(g.Stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return errors.Join(ErrUsage, err)
	})
	pf := root.PersistentFlags()
	pf.StringVar(&g.Home, "home", "", "node home folder (env CAIRN_HOME)")
	pf.StringVarP(&g.Repo, "repo", "r", "", "repository folder (env CAIRN_REPO; default: the one in the home)")
	pf.StringVar(&g.PasswordFile, "password-file", "", "read the passphrase from this file (env CAIRN_PASSWORD_FILE)")
	pf.BoolVar(&g.JSON, "json", false, "print machine-readable JSON")
	pf.BoolVarP(&g.Quiet, "quiet", "q", false, "print only errors")

	for _, add := range commands {
		root.AddCommand(add(g))
	}
	return root
}

// commands lists the constructors of the top-level commands. Each command
// file adds one line here.
var commands = []func(*Globals) *cobra.Command{
	// the repository
	newInitCmd, newBackupCmd, newSnapshotsCmd, newKeyCmd,
	newRestoreCmd, newLsCmd, newDiffCmd, newVersionsCmd,
	newCheckCmd, newForgetCmd, newPruneCmd, newUnlockCmd, newRepairCmd,
	// the network (internal/p2p, internal/hosting, internal/daemon)
	newDaemonCmd, newIDCmd, newPeersCmd, newOfferCmd, newLimitsCmd,
	// sources, schedules and the run catalog
	newSourceCmd, newRunCmd, newHistoryCmd,
	// backups on peers
	newRecoverCmd, newStatusCmd, newDemoCmd,
}
