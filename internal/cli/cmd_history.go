package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairn-backup/cairn/internal/catalog"
)

type historyOptions struct {
	files, failed bool
	limit         int
}

func newHistoryCmd(g *Globals) *cobra.Command {
	var o historyOptions
	c := &cobra.Command{
		Use:   "history [NAME | RUN]",
		Short: "List runs, or the files of one run",
		Long: `Without arguments, list every run, newest first; with a source NAME, that
source's runs; with a RUN number, that run. With --files, the files recorded for
the run: every new, changed, changed-while-read or failed file (see
docs/catalog.md for the result codes).`,
		Example: `  cairn history
  cairn history docs --json
  cairn history 42 --files --failed`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			arg := ""
			if len(args) == 1 {
				arg = args[0]
			}
			return runHistory(cmd.Context(), g, o, arg)
		},
	}
	f := c.Flags()
	f.BoolVar(&o.files, "files", false, "list the files recorded for RUN")
	f.BoolVar(&o.failed, "failed", false, "with --files, only the files that failed")
	f.IntVarP(&o.limit, "limit", "n", 0, "show at most `N` runs")
	return c
}

func runHistory(ctx context.Context, g *Globals, o historyOptions, arg string) error {
	runID, isRun := int64(0), false
	if id, err := strconv.ParseInt(arg, 10, 64); err == nil {
		runID, isRun = id, true // source names are never all digits
	}
	if (o.files || o.failed) && !isRun {
		return usageErr(fmt.Errorf("--files and --failed need a run number: cairn history RUN --files"))
	}
	cat, err := g.openCatalog(ctx, false)
	if err != nil {
		return err
	}
	if cat == nil {
		if isRun {
			return fmt.Errorf("run %d: %w", runID, catalog.ErrNotFound)
		}
		if g.JSON {
			return g.printJSON([]*catalog.Run{})
		}
		g.printf("no runs yet\n")
		return nil
	}
	defer cat.Close()
	switch {
	case isRun && o.files:
		return printRunFiles(ctx, g, cat, runID, o.failed)
	case isRun:
		run, err := cat.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		if g.JSON {
			return g.printJSON(run)
		}
		printRunSummary(g, run)
		g.printf("  started %s", run.Started.Local().Format("2006-01-02 15:04:05"))
		if !run.Finished.IsZero() {
			g.printf(", took %s", humanDuration(run.Finished.Sub(run.Started)))
		}
		g.printf("\n")
		return nil
	}
	if arg != "" {
		if _, err := cat.Source(ctx, arg); err != nil {
			// A removed source still has its history.
			runs, rerr := cat.Runs(ctx, catalog.RunFilter{Source: arg, Limit: 1})
			if rerr != nil || len(runs) == 0 {
				return err
			}
		}
	}
	runs, err := cat.Runs(ctx, catalog.RunFilter{Source: arg, Limit: o.limit})
	if err != nil {
		return err
	}
	if g.JSON {
		return g.printJSON(runs)
	}
	if len(runs) == 0 {
		g.printf("no runs yet\n")
		return nil
	}
	tw := g.table()
	fmt.Fprintln(tw, "RUN\tSOURCE\tKIND\tSTATUS\tSTARTED\tTOOK\tFILES\tNEW\tCHANGED\tFAILED\tSIZE")
	for _, r := range runs {
		took := "-"
		if !r.Finished.IsZero() {
			took = humanDuration(r.Finished.Sub(r.Started))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Source, r.Kind, r.Status,
			r.Started.Local().Format("2006-01-02 15:04"), took, r.Files, r.New, r.Changed, r.Failed, humanBytes(r.Bytes))
	}
	return tw.Flush()
}

// printRunFiles streams the files of a run: a JSON array, or one aligned
// line per file. Runs can hold millions of files, so nothing is buffered.
func printRunFiles(ctx context.Context, g *Globals, cat *catalog.Catalog, runID int64, failedOnly bool) error {
	w := bufio.NewWriter(g.Stdout)
	n := 0
	var err error
	if g.JSON {
		fmt.Fprint(w, "[")
		err = cat.RunFiles(ctx, runID, catalog.FileFilter{FailedOnly: failedOnly}, func(f catalog.RunFile) error {
			b, err := json.Marshal(f)
			if err != nil {
				return err
			}
			if n > 0 {
				w.WriteByte(',')
			}
			w.WriteString("\n  ")
			w.Write(b)
			n++
			return nil
		})
		if n > 0 {
			w.WriteByte('\n')
		}
		fmt.Fprintln(w, "]")
	} else {
		err = cat.RunFiles(ctx, runID, catalog.FileFilter{FailedOnly: failedOnly}, func(f catalog.RunFile) error {
			n++
			if g.Quiet {
				return nil
			}
			if f.Message != "" {
				_, err := fmt.Fprintf(w, "%-18s  %s  (%s)\n", f.Result, f.Path, f.Message)
				return err
			}
			_, err := fmt.Fprintf(w, "%-18s  %s\n", f.Result, f.Path)
			return err
		})
		if err == nil && n == 0 && !g.Quiet {
			fmt.Fprintln(w, "no files recorded for this run")
		}
	}
	if err != nil {
		return err
	}
	return w.Flush()
}
