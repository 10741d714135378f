package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/serve"
)

func init() { register(newServeCommand) }

func newServeCommand(a *app) *cobra.Command {
	var runs, addr string
	var readOnly bool
	c := &cobra.Command{
		Use:   "serve [--dir RUN | --runs DIR] [--addr 127.0.0.1:8080] [--read-only]",
		Short: "Serve a live dashboard of a run, or of a directory of runs, to the browser",
		Long: `serve shows a run in the browser as it trains — its step, loss, lr and speed, a chart of every
metric (hotcb.metrics.jsonl) with markers where ops were applied, step time and its phases,
system stats, the callbacks with controls, the ledger, the recipe and the feature maps — and
updates it live. With --runs, every run directory under DIR is listed and a metric can be
compared across runs. Python hotcb's run directories open too (same files).

The controls run the hotcb commands they stand for (cb enable, cb set_params, opt set_params,
freeze, ...), so what they append to hotcb.commands.jsonl is what the command line would; the
page shows when the ledger says each was applied, or why it failed. They need the token that
serve prints at start (it is in the address it prints); --read-only turns them off.

serve listens on 127.0.0.1 unless --addr says otherwise, serves no file from outside the run
directories, and needs nothing from the network: the page is in the binary. The README lists
its HTTP API.`,
		Example: `  hotcb --dir runs/exp1 serve
  hotcb serve --runs runs --addr 127.0.0.1:9000
  hotcb --dir runs/exp1 serve --read-only`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := serve.Config{ReadOnly: readOnly, Backend: ServeBackend(), Version: Version}
			what := ""
			if runs != "" {
				if cmd.Flags().Changed("dir") {
					return usageErr("serve: --dir and --runs are mutually exclusive", "--dir RUN serves one run, --runs DIR every run under DIR")
				}
				fi, err := os.Stat(runs)
				if err != nil || !fi.IsDir() {
					return usageErr(fmt.Sprintf("serve: --runs %s is not a directory", runs), "name the directory that holds the run directories")
				}
				cfg.RunsDir, what = runs, "the runs under "+runs
			} else {
				dir, err := a.runDir()
				if err != nil {
					return err
				}
				cfg.RunDir, what = string(dir), "run "+string(dir)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return usageErr(fmt.Sprintf("serve: cannot listen on %s: %v", addr, err), "pick another address with --addr, e.g. --addr 127.0.0.1:0 for any free port")
			}
			cfg.Hosts = serve.LoopbackHosts(ln.Addr())
			srv, err := serve.New(cfg)
			if err != nil {
				ln.Close()
				return err
			}
			url := "http://" + ln.Addr().String() + "/"
			fmt.Fprintf(a.out, "hotcb serve: %s\n", what)
			if readOnly {
				fmt.Fprintf(a.out, "  open %s (read-only: the controls are off)\n", url)
			} else {
				fmt.Fprintf(a.out, "  open %s#token=%s\n", url, srv.Token())
				fmt.Fprintf(a.out, "  the controls write commands with that token (header %s); --read-only turns them off\n", serve.TokenHeader)
			}
			if cfg.Hosts == nil {
				fmt.Fprintf(a.errOut, "hotcb serve: warning: %s is not a loopback address: anyone who can reach it can read the run (writes still need the token)\n", ln.Addr())
			}
			fmt.Fprintln(a.out, "  Ctrl-C stops it")
			return srv.Serve(cmd.Context(), ln)
		},
	}
	f := c.Flags()
	f.StringVar(&runs, "runs", "", "serve every run directory under DIR (instead of --dir)")
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	f.BoolVar(&readOnly, "read-only", false, "serve without the controls: nothing is written")
	return c
}

// ServeBackend is the serve.Backend of hotcb serve: the status, the op appending and the
// commands of this package, so that the dashboard writes exactly what these commands write.
func ServeBackend() serve.Backend { return serveBackend{} }

type serveBackend struct{}

// serveAllowed are the commands the dashboard may run, by command path, with the flags each
// may take: every other command, and every other flag (--dir, --out, --recipe, ...), is refused.
var serveAllowed = map[string][]string{
	"hotcb cb load":         {"path", "file", "symbol", "init", "enabled", "no-enabled"},
	"hotcb cb enable":       nil,
	"hotcb cb disable":      nil,
	"hotcb cb unload":       nil,
	"hotcb cb set_params":   nil,
	"hotcb enable":          nil,
	"hotcb disable":         nil,
	"hotcb opt set_params":  {"id"},
	"hotcb opt enable":      {"id"},
	"hotcb opt disable":     {"id"},
	"hotcb loss set_params": {"id"},
	"hotcb loss enable":     {"id"},
	"hotcb loss disable":    {"id"},
	"hotcb set":             {"id"},
	"hotcb freeze":          {"mode", "policy", "step-offset"},
	"hotcb recipe export":   nil,
}

var negativeNumber = regexp.MustCompile(`^-[0-9.]`)

func (serveBackend) StatusJSON(dir string, w io.Writer) error {
	a := newApp(w, io.Discard)
	a.dir = dir
	return a.status(true, 30*time.Second, nil)
}

func (serveBackend) AppendOp(dir string, op ops.Op) ([]byte, error) {
	a := newApp(io.Discard, io.Discard)
	a.dir = dir
	var line []byte
	a.appended = func(l []byte) { line = append([]byte(nil), l...) }
	if err := a.appendOp(op); err != nil {
		return nil, requestErr(err)
	}
	return line, nil
}

func (serveBackend) Command(ctx context.Context, dir string, args []string) (serve.CommandResult, error) {
	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.torch, a.handoff = nil, nil // nothing here needs libtorch, and nothing is handed off
	var res serve.CommandResult
	a.appended = func(l []byte) { res.Lines = append(res.Lines, string(l)) }
	root := newRoot(a)
	if err := checkServeArgs(root, args); err != nil {
		return res, &serve.RequestError{Err: err}
	}
	root.SetArgs(append([]string{"--dir", dir}, args...))
	_, err := root.ExecuteContextC(ctx)
	res.Output, res.Notes = out.String(), errOut.String()
	if err != nil { // the command failed as it would on the command line: its message says why
		return res, &serve.RequestError{Err: err}
	}
	return res, nil
}

// checkServeArgs accepts a command of serveAllowed with only its flags, spelled --name or
// --name=value.
func checkServeArgs(root *cobra.Command, args []string) error {
	names := make([]string, 0, len(serveAllowed))
	for k := range serveAllowed {
		names = append(names, strings.TrimPrefix(k, "hotcb "))
	}
	sort.Strings(names)
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		return fmt.Errorf("%q is not a command the dashboard runs (it runs: %s)", strings.Join(args, " "), strings.Join(names, "; "))
	}
	flags, ok := serveAllowed[cmd.CommandPath()]
	if !ok {
		return fmt.Errorf("'%s' is not a command the dashboard runs (it runs: %s)", strings.TrimPrefix(cmd.CommandPath(), "hotcb "), strings.Join(names, "; "))
	}
	for _, t := range rest {
		if !strings.HasPrefix(t, "-") || negativeNumber.MatchString(t) {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(t, "--"), "=")
		okFlag := strings.HasPrefix(t, "--") && name != ""
		if okFlag {
			okFlag = false
			for _, f := range flags {
				okFlag = okFlag || f == name
			}
		}
		if !okFlag {
			allowed := "none"
			if len(flags) > 0 {
				allowed = "--" + strings.Join(flags, ", --")
			}
			return fmt.Errorf("%s: the dashboard does not pass %q (flags it passes: %s)", strings.TrimPrefix(cmd.CommandPath(), "hotcb "), t, allowed)
		}
	}
	return nil
}

// requestErr marks a usage error (bad input) as the request's fault.
func requestErr(err error) error {
	var u *usageError
	if errors.As(err, &u) {
		return &serve.RequestError{Err: err}
	}
	return err
}
