// Command hotcb drives a hotcb-go training run through its run directory: it writes callback,
// optimizer and loss commands in the Python hotcb's format, sets freeze and replay, exports and
// checks recipes, and shows the status and applied ledger of the running process. `hotcb --help`
// lists the commands; package cli holds them.
//
// hotcb is pure Go and does not load libtorch, so that each command starts in milliseconds (a
// test checks that nothing it links imports "C"). What needs libtorch — train, and version
// --libtorch — runs in hotcb-torch (cmd/hotcb-torch): hotcb replaces itself with that binary,
// given the same arguments ($HOTCB_TORCH, else next to hotcb, else on PATH).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hotcb/hotcb/cli"
)

func main() {
	// Ctrl-C ends `ledger -f` through the context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
