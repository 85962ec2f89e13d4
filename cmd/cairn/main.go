// Command cairn is the cairn backup tool. It builds the command line and
// maps errors to exit codes; everything else lives in internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"

	"github.com/cairn-backup/cairn/internal/cli"
)

// Exit codes. Documented in the README.
const (
	exitOK      = 0
	exitError   = 1
	exitUsage   = 2
	exitPartial = 3
)

func main() {
	if os.Getenv("GOGC") == "" {
		// Backups stream data through short-lived buffers; a tighter
		// collector keeps the peak memory near the live set for a few
		// percent of CPU.
		debug.SetGCPercent(50)
	}
	if path := os.Getenv("CAIRN_CPUPROFILE"); path != "" {
		// For developers: where a command spends its time.
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				defer pprof.StopCPUProfile()
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := &cli.Globals{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
	root := cli.NewRoot(g)
	err := root.ExecuteContext(ctx)
	stop()
	code := exitCode(err, g)
	pprof.StopCPUProfile()
	os.Exit(code)
}

func exitCode(err error, g *cli.Globals) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, cli.ErrPartial) {
		return exitPartial
	}
	code := exitError
	for _, c := range cli.ExitCodes {
		if errors.Is(err, c.Err) {
			code = c.Code
			break
		}
	}
	if errors.Is(err, cli.ErrUsage) {
		code = exitUsage
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(g.Stderr, "cairn: interrupted")
		return 130
	}
	fmt.Fprintf(g.Stderr, "cairn: error: %v\n", cli.Message(err))
	if hint := cli.Hint(err); hint != "" {
		fmt.Fprintf(g.Stderr, "cairn: hint: %s\n", hint)
	}
	return code
}
