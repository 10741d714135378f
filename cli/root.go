package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

// Version is the hotcb-go version that `hotcb version` reports.
const Version = "0.2.0"

// app is what every command shares: the --dir flag, the output writers and, for tests, the clock.
type app struct {
	dir    string
	out    io.Writer
	errOut io.Writer
	now    func() time.Time
	loc    *time.Location // for wall times in the ledger view
	poll   time.Duration  // how often `ledger -f` looks for new lines
	// torch runs what needs libtorch in this process (UseTorch); when nil, handoff replaces the
	// process with hotcb-torch (HandOff) given args, this process's arguments.
	torch   *Torch
	handoff func(what string, args []string) error
	args    []string
	// appended, when set, is told each line appendOp wrote (hotcb serve reports them).
	appended func(line []byte)
}

// constructors build the top-level commands. Each file adds its own in an init function with
// register, so a new command (train.go) is one new file and no edit here:
//
//	func init() { register(newTrainCommand) }
//
//	func newTrainCommand(a *app) *cobra.Command {
//		return &cobra.Command{Use: "train", Short: "...", Example: "...", Args: noArgs,
//			RunE: func(cmd *cobra.Command, args []string) error {
//				// a.dir is --dir (a.runDir() checks that it exists), a.out and a.errOut the
//				// output; cmd.Context() ends on SIGINT/SIGTERM (cmd/hotcb); return
//				// usageErr(problem, hint) for bad input (exit status 2), other errors exit 1.
//			}}
//	}
//
// Every command needs Short and Example (TestHelpHasExamples checks).
var constructors []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { constructors = append(constructors, f) }

// NewRootCommand builds the hotcb command tree writing to out and errOut. Execute it with
// SetArgs and Execute (or ExecuteContext, which `ledger -f` stops on); errors are returned, not
// printed — Run prints them the way the binary does. Without UseTorch, train and `version
// --libtorch` hand the process over to hotcb-torch with os.Args (Run: with its args).
func NewRootCommand(out, errOut io.Writer) *cobra.Command {
	return newRoot(newApp(out, errOut))
}

func newApp(out, errOut io.Writer) *app {
	return &app{out: out, errOut: errOut, now: time.Now, loc: time.Local, poll: 200 * time.Millisecond,
		torch: torch, handoff: HandOff}
}

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "hotcb",
		Short: "Drive a hotcb-go training run live through its run directory",
		Long: `hotcb drives a running training process through its run directory: commands
appended to hotcb.commands.jsonl load, enable, disable and re-parameterise callbacks (and the
optimizer and loss handles) at the next safe point; hotcb.freeze.json locks or replays a run;
hotcb.status.json and hotcb.applied.jsonl say what the process did. The command lines are the
Python hotcb's format, so either tool can drive either run.`,
		Example: `  hotcb --dir runs/exp1 init
  hotcb --dir runs/exp1 cb load timing --path hotcb.modules.cb.callbacks.timing --symbol TimingCallback --init every=50
  hotcb --dir runs/exp1 cb set_params timing every=10
  hotcb --dir runs/exp1 opt set_params lr=3e-4
  hotcb --dir runs/exp1 status
  hotcb --dir runs/exp1 ledger -f`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.PersistentFlags().StringVar(&a.dir, "dir", ".", "run directory (holds hotcb.yaml, hotcb.commands.jsonl, ...)")
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErr(err.Error(), "see '"+c.CommandPath()+" --help'")
	})
	for _, f := range constructors {
		root.AddCommand(f(a))
	}
	group(root)
	return root
}

// Run executes hotcb with args, prints an error as one line on errOut and returns the exit
// status: 0, 1 for a failure, 2 for bad input (an unknown command or flag, a bad value). Without
// UseTorch, train and `version --libtorch` replace the process with hotcb-torch run with args
// (HandOff).
func Run(ctx context.Context, args []string, out, errOut io.Writer) int {
	if torch != nil {
		os.Unsetenv(handedOffEnv) // this binary has libtorch: what it starts may hand off again
	}
	a := newApp(out, errOut)
	a.args = args
	root := newRoot(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	msg := err.Error()
	var u *usageError
	isUsage := errors.As(err, &u)
	if isUsage && u.hint == "" && cmd != nil {
		msg += " (see '" + cmd.CommandPath() + " --help')"
	}
	fmt.Fprintln(errOut, "hotcb: "+oneLine(msg))
	if isUsage {
		return 2
	}
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// usageError is bad input; the hint says how to fix it.
type usageError struct{ msg, hint string }

func (e *usageError) Error() string {
	if e.hint == "" {
		return e.msg
	}
	return e.msg + " (hint: " + e.hint + ")"
}

func usageErr(msg, hint string) error { return &usageError{msg: msg, hint: hint} }

// hinted is a failure (not bad input) with a hint.
func hinted(err error, hint string) error { return fmt.Errorf("%w (hint: %s)", err, hint) }

// group makes a command that only holds subcommands reject an unknown one (cobra would print the
// help and succeed) and show its help when given none.
func group(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		sort.Strings(names)
		hint := "one of: " + strings.Join(names, ", ")
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			hint = "did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageErr(fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath()), hint)
	}
	return c
}

// idArg accepts exactly one positional argument, the id.
func idArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usageErr(cmd.CommandPath()+" needs "+what, "usage: "+cmd.UseLine())
		case len(args) > 1:
			return usageErr(fmt.Sprintf("%s takes one %s, got %d arguments: %s", cmd.CommandPath(), what, len(args), strings.Join(args, " ")), "usage: "+cmd.UseLine())
		case strings.TrimSpace(args[0]) == "":
			return usageErr(cmd.CommandPath()+": the "+what+" is empty", "usage: "+cmd.UseLine())
		}
		return nil
	}
}

// noArgs rejects positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr(fmt.Sprintf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " ")), "usage: "+cmd.UseLine())
	}
	return nil
}

// handOff hands what (a command that needs libtorch) to hotcb-torch, with this process's
// arguments unchanged.
func (a *app) handOff(what string) error {
	args := a.args
	if args == nil {
		args = os.Args[1:]
	}
	if a.handoff == nil {
		return fmt.Errorf("%s needs libtorch, which this program does not link", what)
	}
	return a.handoff(what, args)
}

// runDir is the --dir directory, which must exist (only init creates it).
func (a *app) runDir() (rundir.Dir, error) {
	fi, err := os.Stat(a.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", usageErr(fmt.Sprintf("run directory %s does not exist", a.dir),
			fmt.Sprintf("create it with 'hotcb --dir %s init', or pass the run's directory with --dir", a.dir))
	case err != nil:
		return "", err
	case !fi.IsDir():
		return "", usageErr(fmt.Sprintf("run directory %s is not a directory", a.dir), "pass the run's directory with --dir")
	}
	return rundir.Dir(a.dir), nil
}

// appendOp validates op and appends it to the commands file as one line (one locked O_APPEND
// write), so concurrent writers never interleave.
func (a *app) appendOp(op ops.Op) error {
	if err := op.Validate(); err != nil {
		return usageErr(err.Error(), "")
	}
	line, err := ops.Marshal(op)
	if err != nil {
		return usageErr(fmt.Sprintf("%s: %v", op, err), "")
	}
	if _, err := ops.Parse(line); err != nil { // what the controller will read back
		return usageErr(fmt.Sprintf("%s: %v", op, err), "")
	}
	dir, err := a.runDir()
	if err != nil {
		return err
	}
	if err := rundir.AppendLine(dir.Path(rundir.Commands), line); err != nil {
		return err
	}
	if a.appended != nil {
		a.appended(line)
	}
	return nil
}

// resolveInput finds an input file named on the command line: as given (relative to the current
// directory), else relative to the run directory — so both `--recipe runs/x/hotcb.recipe.jsonl`
// and `--dir runs/x ... --recipe hotcb.recipe.jsonl` work.
func (a *app) resolveInput(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if q := rundir.Dir(a.dir).Path(p); exists(q) {
		return q
	}
	return p
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
