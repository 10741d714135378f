package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/ops"
)

func init() {
	register(func(a *app) *cobra.Command {
		return newHandleModule(a, "opt", "the optimizer",
			`opt changes an optimizer the training program registered with the kernel (default id main):
set_params takes its hyper-parameters by name (lr, weight_decay, momentum, betas, ... as the
optimizer has them) for every parameter group, or for one with group=N; the change is all or
nothing. enable and disable exist for hotcb's Python kernel; the Go kernel records them as
failed (an optimizer cannot be disabled: set lr=0 instead).`, `  hotcb --dir runs/exp1 opt set_params lr=3e-4
  hotcb --dir runs/exp1 opt set_params lr=1e-3 weight_decay=0.01
  hotcb --dir runs/exp1 opt set_params lr=1e-4 group=1
  hotcb --dir runs/exp1 opt set_params --id head lr=1e-4`)
	})
	register(func(a *app) *cobra.Command {
		return newHandleModule(a, "loss", "the loss",
			`loss changes the loss terms the training program registered with the kernel (a loss.Loss,
kernel.RegisterLoss; default id main; hotcb train has ce, smooth and l2). set_params keys route
as in hotcb: NAME_w=0.2 (or NAME=0.2) sets a term's weight, terms.NAME=false turns it off
(true: on), ramps.NAME='{"type":"linear","warmup_frac":0.2,"end":2.0}' ramps its weight from
start (0) to end (its weight) over warmup_steps or a fraction of the run, starting at the step
the op applies ("none" removes the ramp; setting the weight does too). A term the program did
not declare, a negative weight or a bad ramp fails the whole op; the ledger records why.
disable makes the handle skip set_params until enable.`, `  hotcb --dir runs/exp1 loss set_params distill_w=0.2 depth_w=1.5
  hotcb --dir runs/exp1 loss set_params terms.aux_depth=false
  hotcb --dir runs/exp1 loss set_params ramps.depth='{"type":"linear","warmup_frac":0.2,"end":2.0}'
  hotcb --dir runs/exp1 loss set_params terms.smooth=true l2_w=5e-4   # hotcb train's terms`)
	})
	register(newSetSugar)
}

// newHandleModule is `hotcb opt ...` / `hotcb loss ...`: enable, disable and set_params of a
// handle of that kernel module (default id main).
func newHandleModule(a *app, module, what, long, example string) *cobra.Command {
	m := group(&cobra.Command{
		Use:     module,
		Short:   "Control " + what + " of the training run (kernel module " + module + ")",
		Long:    long,
		Example: example,
	})
	for _, op := range []string{ops.OpEnable, ops.OpDisable} {
		op := op
		var id string
		c := &cobra.Command{
			Use:     op,
			Short:   fmt.Sprintf("%s the %s handle", strings.ToUpper(op[:1])+op[1:], module),
			Example: fmt.Sprintf("  hotcb --dir runs/exp1 %s %s", module, op),
			Args:    noArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := checkID(id); err != nil {
					return err
				}
				return a.queue(ops.Op{Module: module, Op: op, ID: id})
			},
		}
		c.Flags().StringVar(&id, "id", "main", "handle id")
		m.AddCommand(c)
	}
	var id string
	set := &cobra.Command{
		Use:     "set_params [--id ID] KEY=VALUE...",
		Aliases: []string{"set"},
		Short:   "Change " + what + "'s parameters",
		Long: fmt.Sprintf(`set_params sends new values to the %s handle (default id main). Values are parsed as hotcb
does: true/false, integers, floats (3e-4), JSON objects and arrays, otherwise strings.`, module),
		Example: example,
		Args:    kvArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkID(id); err != nil {
				return err
			}
			params, err := ParseKV(args)
			if err != nil {
				return err
			}
			return a.queue(ops.Op{Module: module, Op: ops.OpSetParams, ID: id, Params: params})
		},
	}
	set.Flags().StringVar(&id, "id", "main", "handle id")
	m.AddCommand(set)
	return m
}

func kvArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErr(cmd.CommandPath()+": no key=value pairs given", "e.g. '"+cmd.CommandPath()+" lr=3e-4'")
	}
	return nil
}

func checkID(id string) error {
	if strings.TrimSpace(id) == "" {
		return usageErr("--id is empty", "omit --id for the default handle, main")
	}
	return nil
}

// Keys that route `hotcb set` to the opt module, as hotcb routes them.
var optKeys = map[string]bool{"lr": true, "weight_decay": true, "clip_norm": true, "scheduler_scale": true,
	"scheduler_drop": true, "group": true, "groups": true}

// routeModule picks opt or loss for `hotcb set` from the keys: any optimizer key means opt; keys
// ending in _w or starting with terms. or ramps. mean loss.
func routeModule(params map[string]any) (string, error) {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if optKeys[k] {
			return "opt", nil
		}
	}
	for _, k := range keys {
		if strings.HasSuffix(k, "_w") || strings.HasPrefix(k, "terms.") || strings.HasPrefix(k, "ramps.") {
			return "loss", nil
		}
	}
	return "", usageErr(fmt.Sprintf("cannot tell whether %s belong to opt or loss", strings.Join(keys, ", ")),
		"use 'hotcb opt set_params' or 'hotcb loss set_params' (or 'hotcb cb set_params ID' for a callback)")
}

func newSetSugar(a *app) *cobra.Command {
	var id string
	c := &cobra.Command{
		Use:   "set [--id ID] KEY=VALUE...",
		Short: "Set optimizer or loss parameters, routed by key (short for 'opt/loss set_params')",
		Long: `set routes to the opt module when a key is an optimizer key (lr, weight_decay, clip_norm,
scheduler_scale, scheduler_drop, group, groups) and to the loss module when a key ends in _w or
starts with terms. or ramps.; anything else is an error. For callbacks use 'hotcb cb set_params'.`,
		Example: `  hotcb --dir runs/exp1 set lr=5e-5
  hotcb --dir runs/exp1 set distill_w=0.25`,
		Args: kvArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkID(id); err != nil {
				return err
			}
			params, err := ParseKV(args)
			if err != nil {
				return err
			}
			module, err := routeModule(params)
			if err != nil {
				return err
			}
			return a.queue(ops.Op{Module: module, Op: ops.OpSetParams, ID: id, Params: params})
		},
	}
	c.Flags().StringVar(&id, "id", "main", "handle id")
	return c
}
