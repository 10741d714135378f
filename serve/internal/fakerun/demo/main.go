// Command demo serves a pretend run that keeps training, for trying the dashboard by hand:
// go run ./serve/internal/fakerun/demo -dir /tmp/demo/exp1 -addr 127.0.0.1:8080
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"time"

	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/serve"
	"github.com/hotcb/hotcb/serve/internal/fakerun"
)

func main() {
	dir := flag.String("dir", "/tmp/hotcb-demo/exp1", "run directory to write")
	addr := flag.String("addr", "127.0.0.1:8080", "address")
	history := flag.Int("history", 5000, "steps written before serving")
	tick := flag.Duration("tick", 100*time.Millisecond, "time per step batch")
	flag.Parse()
	r, err := fakerun.New(*dir, 1)
	if err != nil {
		panic(err)
	}
	if err := r.Advance(*history); err != nil {
		panic(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	go func() {
		for ctx.Err() == nil {
			time.Sleep(*tick)
			r.Advance(5)
			r.Apply()
		}
	}()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		panic(err)
	}
	srv, err := serve.New(serve.Config{RunDir: *dir, Backend: cli.ServeBackend(), Hosts: serve.LoopbackHosts(ln.Addr()), Version: cli.Version})
	if err != nil {
		panic(err)
	}
	fmt.Printf("http://%s/#token=%s\n", ln.Addr(), srv.Token())
	srv.Serve(ctx, ln)
}
