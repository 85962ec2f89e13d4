package cli

import (
	"errors"
	"strings"

	"github.com/cairn-backup/cairn/internal/check"
	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/restore"
)

// ExitCode pairs a sentinel error with the exit code cmd/cairn uses for it.
type ExitCode struct {
	Err  error
	Code int
	Hint string
}

// ExitCodes lists the errors with their own exit code, first match wins.
// Commands register their sentinels here rather than picking codes.
var ExitCodes = []ExitCode{
	{crypto.ErrWrongPassphrase, 12, "check the passphrase, or use the recovery code: cairn key add --recovery-code"},
	{repo.ErrNoRepository, 10, "create one with: cairn init (or pass --repo DIR)"},
	{repo.ErrLocked, 11, "if the process holding it is gone, run: cairn unlock"},
	{repo.ErrVersion, 13, "upgrade cairn to read this repository"},
	{repo.ErrCorrupt, 14, "run: cairn check --read-data"},
	{errNoPassphrase, 15, "set CAIRN_PASSWORD, CAIRN_PASSWORD_FILE or --password-file, or run on a terminal"},
	{repo.ErrNoSnapshot, 16, "list them with: cairn snapshots"},
	{restore.ErrNotFound, 16, "browse the snapshot with: cairn ls SNAPSHOT"},
	{check.ErrDamaged, 17, "the damaged objects and the snapshots they affect are listed above; the other snapshots are intact"},
}

// Message is the one-line text of an error for people: the usage marker is
// dropped, the rest kept.
func Message(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, ErrUsage.Error()+"\n")
	s = strings.TrimPrefix(s, ErrUsage.Error()+": ")
	return strings.ReplaceAll(s, "\n", ": ")
}

// Hint returns advice for an error, if any is known.
func Hint(err error) string {
	for _, c := range ExitCodes {
		if errors.Is(err, c.Err) {
			return c.Hint
		}
	}
	return ""
}

var errNotYet = errors.New("this command is not available in this build yet")
