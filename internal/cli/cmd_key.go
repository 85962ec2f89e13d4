package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/crypto"
	"github.com/cairn-backup/cairn/internal/repo"
)

func newKeyCmd(g *Globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Manage the passphrases (key files) that open the repository",
	}
	var recovery bool
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a passphrase (with --recovery-code, open with the recovery code instead of a passphrase)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runKeyAdd(cmd.Context(), g, recovery)
		},
	}
	add.Flags().BoolVar(&recovery, "recovery-code", false, "unlock with the recovery code (asked for, or $CAIRN_RECOVERY_CODE)")
	c.AddCommand(
		&cobra.Command{
			Use: "list", Short: "List key files", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return runKeyList(cmd.Context(), g) },
		},
		add,
		&cobra.Command{
			Use: "remove ID", Short: "Remove a key file", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return runKeyRemove(cmd.Context(), g, args[0]) },
		},
		&cobra.Command{
			Use: "passwd", Short: "Change the passphrase of the key file in use", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return runKeyPasswd(cmd.Context(), g) },
		},
		&cobra.Command{
			Use: "recovery-code", Short: "Show the recovery code again (asks for the passphrase)", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error { return runRecoveryCode(cmd.Context(), g) },
		},
	)
	return c
}

func runKeyList(ctx context.Context, g *Globals) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	if g.JSON {
		if keys == nil {
			keys = []repo.KeyInfo{}
		}
		return g.printJSON(keys)
	}
	tw := g.table()
	fmt.Fprintln(tw, " \tID\tUser\tHost\tCreated")
	for _, k := range keys {
		cur := " "
		if k.Current {
			cur = "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, k.Name[:8], k.Username, k.Host, k.Created.Local().Format("2006-01-02 15:04:05"))
	}
	return tw.Flush()
}

// openWithRecoveryCode opens the repository with the recovery code.
func (g *Globals) openWithRecoveryCode(ctx context.Context) (*repo.Repository, error) {
	st, _, _, err := g.openStore()
	if err != nil {
		return nil, err
	}
	code := g.Getenv("CAIRN_RECOVERY_CODE")
	if code == "" {
		if code, err = g.readLine("Recovery code: "); err != nil {
			return nil, err
		}
	}
	mk, err := crypto.ParseRecoveryCode(code)
	if err != nil {
		return nil, err
	}
	return repo.OpenWithMaster(ctx, st, mk, repo.Options{})
}

func runKeyAdd(ctx context.Context, g *Globals, recovery bool) error {
	var r *repo.Repository
	var err error
	if recovery {
		r, err = g.openWithRecoveryCode(ctx)
	} else {
		r, err = g.openRepo(ctx)
	}
	if err != nil {
		return err
	}
	defer r.Close()
	pw, err := g.newPassphrase()
	if err != nil {
		return err
	}
	name, err := r.AddKey(ctx, pw, repo.Options{})
	if err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(map[string]string{"id": name})
	}
	g.printf("added key %s\n", name[:8])
	return nil
}

// newPassphrase reads a new passphrase: $CAIRN_NEW_PASSWORD or the terminal.
func (g *Globals) newPassphrase() ([]byte, error) {
	if p := g.Getenv("CAIRN_NEW_PASSWORD"); p != "" {
		return []byte(p), nil
	}
	if !g.isTerminal() {
		return nil, errors.New("no new passphrase: set CAIRN_NEW_PASSWORD or run on a terminal")
	}
	p, err := g.readSecret("New passphrase: ")
	if err != nil {
		return nil, err
	}
	again, err := g.readSecret("Repeat new passphrase: ")
	if err != nil {
		return nil, err
	}
	if string(p) != string(again) || len(p) == 0 {
		return nil, errors.New("the new passphrases do not match or are empty")
	}
	return p, nil
}

func runKeyRemove(ctx context.Context, g *Globals, id string) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	name, err := r.RemoveKey(ctx, id)
	if err != nil {
		return err
	}
	g.printf("removed key %s\n", name[:8])
	return nil
}

func runKeyPasswd(ctx context.Context, g *Globals) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	pw, err := g.newPassphrase()
	if err != nil {
		return err
	}
	name, err := r.ChangePassphrase(ctx, pw, repo.Options{})
	if err != nil {
		return err
	}
	g.printf("passphrase changed (key %s)\n", name[:8])
	return nil
}

func runRecoveryCode(ctx context.Context, g *Globals) error {
	r, err := g.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	code := r.Keys().RecoveryCode()
	if g.JSON {
		return g.printJSON(map[string]string{"recovery_code": code, "owner_id": r.Keys().OwnerID()})
	}
	fmt.Fprintln(g.Stdout, code)
	return nil
}
