package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

func init() {
	register(newCBCommand)
	register(func(a *app) *cobra.Command { return cbSugar(a, ops.OpEnable) })
	register(func(a *app) *cobra.Command { return cbSugar(a, ops.OpDisable) })
}

func newCBCommand(a *app) *cobra.Command {
	cb := group(&cobra.Command{
		Use:   "cb",
		Short: "Load, enable, disable, re-parameterise and unload callbacks",
		Long: `cb appends callback commands to hotcb.commands.jsonl; the training process applies each at its
next safe point and records the outcome in hotcb.applied.jsonl ('hotcb ledger').`,
		Example: `  hotcb cb load timing --path hotcb.modules.cb.callbacks.timing --symbol TimingCallback --init every=50
  hotcb cb set_params timing every=10
  hotcb cb disable timing`,
	})
	cb.AddCommand(newCBLoad(a))
	for _, op := range []string{ops.OpEnable, ops.OpDisable, ops.OpUnload} {
		cb.AddCommand(newCBSimple(a, op))
	}
	cb.AddCommand(newCBSetParams(a))
	return cb
}

var simpleShort = map[string]string{
	ops.OpEnable:  "Enable a loaded callback (its Handle runs again)",
	ops.OpDisable: "Disable a callback (it stays loaded and keeps its state)",
	ops.OpUnload:  "Unload a callback (its Close runs; load it again to bring it back)",
}

func newCBSimple(a *app, op string) *cobra.Command {
	return &cobra.Command{
		Use:               op + " ID",
		Short:             simpleShort[op],
		Example:           fmt.Sprintf("  hotcb --dir runs/exp1 cb %s timing", op),
		Args:              idArg("a callback ID"),
		ValidArgsFunction: a.completeIDs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.queue(ops.Op{Module: "cb", Op: op, ID: args[0]}); err != nil {
				return err
			}
			a.noteUnknownID(args[0])
			return nil
		},
	}
}

// noteUnknownID warns (without failing: the process may load it later) when the last status of
// the run has no callback of that id.
func (a *app) noteUnknownID(id string) {
	snap, err := readSnapshot(rundir.Dir(a.dir).Path(rundir.Status))
	if err != nil || snap == nil {
		return
	}
	if _, err := findCallback(snap, id); err != nil {
		fmt.Fprintf(a.errOut, "note: the process has no callback %q (status at step %d); the command waits in the file until one is loaded\n", id, snap.st.Step)
	}
}

// completeIDs offers the callback ids of the run's status for the first argument.
func (a *app) completeIDs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	snap, err := readSnapshot(rundir.Dir(a.dir).Path(rundir.Status))
	if err != nil || snap == nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ids := make([]string, 0, len(snap.st.Callbacks))
	for _, cs := range snap.st.Callbacks {
		ids = append(ids, cs.ID)
	}
	return ids, cobra.ShellCompDirectiveNoFileComp
}

// cbSugar is `hotcb enable ID` / `hotcb disable ID`: hotcb's shortcuts for the cb module.
func cbSugar(a *app, op string) *cobra.Command {
	c := newCBSimple(a, op)
	c.Short = strings.ToUpper(op[:1]) + op[1:] + " a callback (short for 'cb " + op + "')"
	c.Example = fmt.Sprintf("  hotcb --dir runs/exp1 %s timing", op)
	return c
}

func newCBSetParams(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "set_params ID KEY=VALUE...",
		Aliases: []string{"set"},
		Short:   "Change a callback's parameters (kept until it loads if it is not loaded yet)",
		Long: `set_params sends new parameter values to a callback's SetParams. Values are parsed as hotcb
does: true/false, integers, floats (3e-4), JSON objects and arrays, otherwise strings; key= is
the empty string. A callback refuses bad values as a whole and keeps its old ones (see
'hotcb ledger' and 'hotcb status').`,
		Example: `  hotcb --dir runs/exp1 cb set_params timing every=10
  hotcb --dir runs/exp1 cb set feat_viz layers='["features.0","features.3"]' samples=4`,
		ValidArgsFunction: a.completeIDs,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErr(cmd.CommandPath()+" needs a callback ID and key=value pairs", "usage: "+cmd.UseLine())
			}
			if len(args) == 1 {
				return usageErr(cmd.CommandPath()+" "+args[0]+": no key=value pairs given", "e.g. 'hotcb cb set_params "+args[0]+" every=10'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			params, err := ParseKV(args[1:])
			if err != nil {
				return err
			}
			return a.queue(ops.Op{Module: "cb", Op: ops.OpSetParams, ID: args[0], Params: params})
		},
	}
}

func newCBLoad(a *app) *cobra.Command {
	var path, file, symbol string
	var initKV []string
	var enabled, noEnabled bool
	c := &cobra.Command{
		Use:   "load ID (--path PATH | --file FILE.go) --symbol SYMBOL [--init KEY=VALUE...]",
		Short: "Load a callback: a compiled one by path and symbol, or a Go source file",
		Long: `load builds a callback and attaches it under ID (replacing one loaded under the same ID).

  --path PATH      a compiled callback registered under PATH and SYMBOL: a built-in by its hotcb
                   name (hotcb.modules.cb.callbacks.timing TimingCallback) or Go name
                   (github.com/hotcb/hotcb/callbacks/timing Timing), or the training program's own
  --file FILE.go   Go source interpreted by the training process and reloaded when it changes;
                   SYMBOL is a struct type or a constructor. The path is written absolute.

Init values (--init, repeatable, or key=value arguments after the ID) go to the constructor.
Without --enabled/--no-enabled the callback starts enabled.`,
		Example: `  hotcb --dir runs/exp1 cb load timing --path hotcb.modules.cb.callbacks.timing --symbol TimingCallback --init every=50
  hotcb --dir runs/exp1 cb load gradnorm --file examples/callbacks/grad_norm.go --symbol GradNorm --init every=10
  hotcb --dir runs/exp1 cb load fv --path github.com/hotcb/hotcb/callbacks/featviz --symbol FeatureViz --no-enabled --init every=100 samples=2`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || strings.TrimSpace(args[0]) == "" {
				return usageErr(cmd.CommandPath()+" needs a callback ID", "usage: hotcb cb load ID (--path PATH | --file FILE.go) --symbol SYMBOL")
			}
			for _, x := range args[1:] {
				if !strings.Contains(x, "=") {
					return usageErr(fmt.Sprintf("%s %s: unexpected argument %q", cmd.CommandPath(), args[0], x),
						"load takes one ID; init values are key=value")
				}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			target, err := loadTarget(path, file, symbol, cmd.Flags().Changed("path"), cmd.Flags().Changed("file"))
			if err != nil {
				return err
			}
			initVals, err := ParseKV(append(append([]string(nil), initKV...), args[1:]...))
			if err != nil {
				return err
			}
			op := ops.Op{Module: "cb", Op: ops.OpLoad, ID: id, Target: target, Init: initVals}
			switch {
			case enabled && noEnabled:
				return usageErr("--enabled and --no-enabled contradict each other", "give at most one")
			case enabled:
				op.Enabled = &enabled
			case noEnabled:
				f := false
				op.Enabled = &f
			}
			return a.queue(op)
		},
	}
	f := c.Flags()
	f.StringVar(&path, "path", "", "registered path of a compiled callback (target kind module)")
	f.StringVar(&file, "file", "", "Go source file of the callback (target kind python_file, as hotcb writes it; read as go_file)")
	f.StringVar(&symbol, "symbol", "", "symbol: the registered name, or the struct type / constructor in the file")
	f.StringArrayVar(&initKV, "init", nil, "init value KEY=VALUE (repeatable)")
	f.BoolVar(&enabled, "enabled", false, "start enabled (the default when neither flag is given)")
	f.BoolVar(&noEnabled, "no-enabled", false, "load disabled; 'hotcb enable ID' turns it on")
	_ = c.MarkFlagFilename("file", "go")
	return c
}

// loadTarget checks --path/--file/--symbol and builds the target as hotcb's CLI does: a file is
// kind python_file (the Go controller reads python_file with a .go path as go_file), a path is
// kind module.
func loadTarget(path, file, symbol string, pathSet, fileSet bool) (*ops.CallbackTarget, error) {
	const usage = "use --path PATH for a compiled callback or --file FILE.go for Go source"
	switch {
	case pathSet && fileSet:
		return nil, usageErr("cb load: --path and --file are mutually exclusive", usage)
	case !pathSet && !fileSet:
		return nil, usageErr("cb load: no callback source given", usage)
	case strings.TrimSpace(symbol) == "":
		return nil, usageErr("cb load: --symbol is required", "the registered symbol, or the type or constructor in the file, e.g. --symbol TimingCallback")
	}
	if pathSet {
		if strings.TrimSpace(path) == "" {
			return nil, usageErr("cb load: --path is empty", usage)
		}
		if err := checkBuiltinTarget(path, symbol); err != nil {
			return nil, err
		}
		return &ops.CallbackTarget{Kind: ops.KindModule, Path: path, Symbol: symbol}, nil
	}
	if file == "" {
		return nil, usageErr("cb load: --file is empty", usage)
	}
	switch ext := strings.ToLower(filepath.Ext(file)); {
	case ext == ".py":
		return nil, usageErr(fmt.Sprintf("cb load: --file %s is Python; Python callbacks cannot run in a Go process", file),
			"write the callback in Go (a .go file) or use a compiled one with --path")
	case ext != ".go":
		return nil, usageErr(fmt.Sprintf("cb load: --file %s is not a .go file", file), "--file takes Go source, e.g. --file callbacks/grad_norm.go")
	}
	fi, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		where := "the current directory"
		if wd, err := os.Getwd(); err == nil && !filepath.IsAbs(file) {
			where = wd
		}
		return nil, usageErr(fmt.Sprintf("cb load: --file %s does not exist (looked in %s)", file, where), "a relative path is relative to the current directory")
	case err != nil:
		return nil, usageErr(fmt.Sprintf("cb load: --file %s: %v", file, err), "")
	case !fi.Mode().IsRegular():
		return nil, usageErr(fmt.Sprintf("cb load: --file %s is not a regular file", file), "--file takes a Go source file")
	}
	// The training process may run elsewhere: give it the path that was checked here.
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	return &ops.CallbackTarget{Kind: ops.KindPythonFile, Path: abs, Symbol: symbol}, nil
}

// queue writes op and says so.
func (a *app) queue(op ops.Op) error {
	if err := a.appendOp(op); err != nil {
		return err
	}
	msg := fmt.Sprintf("queued %s %s", op.ModuleName(), op.Op)
	if op.ID != "" {
		msg += " for " + op.ID
	}
	switch {
	case op.Target != nil:
		msg += fmt.Sprintf(" from %s:%s#%s", op.Target.Kind, op.Target.Path, op.Target.Symbol)
		if len(op.Init) > 0 {
			msg += " init " + formatKV(op.Init)
		}
		if op.Enabled != nil {
			msg += fmt.Sprintf(" (enabled=%v)", *op.Enabled)
		}
	case len(op.Params) > 0:
		msg += ": " + formatKV(op.Params)
	}
	fmt.Fprintln(a.out, msg)
	a.noteFrozen(op)
	return nil
}

// noteFrozen warns, naming the mode, when the run is frozen and the op will be recorded but not
// applied.
func (a *app) noteFrozen(op ops.Op) {
	if op.ModuleName() == "core" {
		return
	}
	fz, err := rundir.ReadFreeze(rundir.Dir(a.dir).Path(rundir.Freeze))
	if err != nil {
		return
	}
	switch fz.Mode {
	case rundir.FreezeProd:
		fmt.Fprintf(a.errOut, "note: the run is frozen (freeze mode %s): the process records this command as %s and does not apply it; 'hotcb freeze --mode off' unlocks\n",
			fz.Mode, rundir.DecisionIgnoredFreeze)
	case rundir.FreezeReplay, rundir.FreezeReplayAdjusted:
		fmt.Fprintf(a.errOut, "note: the run is replaying a recipe (freeze mode %s): the process records this command as %s and does not apply it; 'hotcb freeze --mode off' ends the replay\n",
			fz.Mode, rundir.DecisionIgnoredReplay)
	}
}
