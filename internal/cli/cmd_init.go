package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/repo"
	"github.com/cairn-backup/cairn/internal/store"
	"github.com/cairn-backup/cairn/internal/store/local"
)

func newInitCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a repository (in --repo DIR, or in the node's home)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := runInit(cmd.Context(), g, true)
			return err
		},
	}
}

type initResult struct {
	Repository   string `json:"repository"`
	ID           string `json:"id"`
	OwnerID      string `json:"owner_id"`
	RecoveryCode string `json:"recovery_code"`
}

// runInit creates the repository. The recovery code is printed once, on
// the terminal or in --json output, and never stored.
func runInit(ctx context.Context, g *Globals, explicit bool) (*repo.Repository, error) {
	dir, inHome, err := g.repoDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, store.ConfigName)); err == nil {
		return nil, fmt.Errorf("%s: %w", dir, repo.ErrExists)
	}
	if inHome {
		h, err := g.home()
		if err != nil {
			return nil, err
		}
		if err := h.Ensure(); err != nil {
			return nil, err
		}
	}
	pw, err := g.passphrase("New passphrase for "+dir+": ", true)
	if err != nil {
		return nil, err
	}
	st, err := local.Create(dir)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("%s: %w", dir, repo.ErrExists)
		}
		return nil, err
	}
	r, err := repo.Init(ctx, st, pw, repo.Options{})
	if err != nil {
		return nil, fmt.Errorf("create repository %s: %w", dir, err)
	}
	if inHome {
		if err := g.afterUnlock(r); err != nil {
			return nil, err
		}
	}
	res := initResult{Repository: dir, ID: r.Config().ID, OwnerID: r.Keys().OwnerID(), RecoveryCode: r.Keys().RecoveryCode()}
	if g.JSON && explicit {
		return r, g.printJSON(res)
	}
	w := g.Stderr
	if explicit {
		w = g.Stdout
	}
	fmt.Fprintf(w, "Created repository %s at %s\n\n", res.ID[:8], dir)
	fmt.Fprintf(w, "Your recovery code (write it down and keep it safe, it is shown only now):\n\n    %s\n\n", res.RecoveryCode)
	fmt.Fprintf(w, "With it and any one of your peers, a new machine can bring everything back.\n")
	fmt.Fprintf(w, "Show it again later with: cairn key recovery-code\n\n")
	return r, nil
}
