// Command hotcb drives a hotcb-go training run through its run directory: it writes callback,
// optimizer and loss commands in the Python hotcb's format, sets freeze and replay, exports and
// checks recipes, and shows the status and applied ledger of the running process. `hotcb --help`
// lists the commands; package cli holds them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/hotcb/hotcb/callbacks/all" // the built-ins: init lists them, cb load checks names
	"github.com/hotcb/hotcb/cli"
)

func main() {
	// Ctrl-C ends `ledger -f` (and, later, a training run) through the context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
