// Command hotcb-torch is hotcb with libtorch: the same commands, plus train (package trainer)
// and version's libtorch and CUDA details, which need it. hotcb hands those over to this binary
// (see cmd/hotcb), so it is usually run through hotcb; run directly it behaves the same, and
// takes ≈0.3 s or more to start, loading libtorch.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	_ "github.com/hotcb/hotcb/callbacks/all" // the built-ins, which train's kernel loads by name
	"github.com/hotcb/hotcb/cli"
	_ "github.com/hotcb/hotcb/cli/torchcli" // train, version's libtorch details
)

func main() {
	// Ctrl-C ends `ledger -f` and a training run (at the end of its step) through the context.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C or SIGTERM kills the process at once
	}()
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
