package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/rundir"
)

func init() { register(newFreezeCommand) }

func newFreezeCommand(a *app) *cobra.Command {
	var fz rundir.FreezeState
	var recipe, adjust string
	c := &cobra.Command{
		Use:   "freeze --mode off|prod|replay|replay_adjusted [--recipe FILE] [--adjust FILE] [--policy best_effort|strict] [--step-offset N]",
		Short: "Lock a run (prod), replay a recipe (replay, replay_adjusted) or unlock it (off)",
		Long: `freeze writes hotcb.freeze.json, which the training process reads at its next safe point:

  off              commands apply (the default)
  prod             commands from outside are recorded but not applied (ignored_freeze)
  replay           the recipe's ops are applied at their steps; outside commands are ignored
  replay_adjusted  as replay, with the patches of an adjust file applied to the recipe first

A replay mode needs a recipe (default: the run's hotcb.recipe.jsonl; 'hotcb recipe export'
makes one from a finished run's ledger), replay_adjusted also an adjust file (default: the run's
hotcb.adjust.yaml; 'hotcb recipe patch-template' starts one). Both are read and checked before
anything is written, and written as absolute paths. --step-offset shifts every recipe step;
--policy strict makes a replay fail when recipe entries were never reached.`,
		Example: `  hotcb --dir runs/exp1 freeze --mode prod
  hotcb --dir runs/exp2 freeze --mode replay --recipe runs/exp1/hotcb.recipe.jsonl
  hotcb --dir runs/exp2 freeze --mode replay_adjusted --recipe runs/exp1/hotcb.recipe.jsonl --adjust hotcb.adjust.yaml --policy strict --step-offset 100
  hotcb --dir runs/exp1 freeze --mode off`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("mode") {
				return usageErr("freeze: --mode is required", "--mode off, prod, replay or replay_adjusted")
			}
			probe := fz // mode and policy now; the adjust file is resolved below
			probe.AdjustPath = optional("-")
			if err := probe.Validate(); err != nil {
				return usageErr("freeze: "+err.Error(), "")
			}
			dir, err := a.runDir()
			if err != nil {
				return err
			}
			replay := fz.Mode == rundir.FreezeReplay || fz.Mode == rundir.FreezeReplayAdjusted
			recipePath, err := a.freezeInput(dir, "--recipe", recipe, rundir.Recipe, replay, "make one with 'hotcb recipe export' in the run to replay")
			if err != nil {
				return err
			}
			adjustPath, err := a.freezeInput(dir, "--adjust", adjust, rundir.Adjust, fz.Mode == rundir.FreezeReplayAdjusted, "start one with 'hotcb recipe patch-template --write'")
			if err != nil {
				return err
			}
			summary, err := checkReplayFiles(recipePath, adjustPath)
			if err != nil {
				return err
			}
			fz.RecipePath, fz.AdjustPath = optional(recipePath), optional(adjustPath)
			if err := fz.Validate(); err != nil {
				return usageErr("freeze: "+err.Error(), "")
			}
			b, err := json.Marshal(fz)
			if err != nil {
				return err
			}
			p := dir.Path(rundir.Freeze)
			if err := rundir.WriteFileAtomic(p, append(b, '\n')); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "wrote %s: mode %s%s\n", p, fz.Mode, freezeDetail(fz))
			if summary != "" {
				fmt.Fprintln(a.out, summary)
			}
			switch fz.Mode {
			case rundir.FreezeProd:
				fmt.Fprintln(a.out, "commands from outside are now recorded but not applied ('hotcb freeze --mode off' to unlock)")
			case rundir.FreezeReplay, rundir.FreezeReplayAdjusted:
				fmt.Fprintln(a.out, "the recipe is applied at its steps; commands from outside are ignored meanwhile")
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&fz.Mode, "mode", "", "off, prod, replay or replay_adjusted (required)")
	f.StringVar(&recipe, "recipe", "", "recipe to replay (default: the run's hotcb.recipe.jsonl)")
	f.StringVar(&adjust, "adjust", "", "adjust file for replay_adjusted (default: the run's hotcb.adjust.yaml)")
	f.StringVar(&fz.Policy, "policy", rundir.PolicyBestEffort, "replay policy: best_effort or strict")
	f.Int64Var(&fz.StepOffset, "step-offset", 0, "added to every recipe step")
	_ = c.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions(
		[]string{rundir.FreezeOff, rundir.FreezeProd, rundir.FreezeReplay, rundir.FreezeReplayAdjusted}, cobra.ShellCompDirectiveNoFileComp))
	_ = c.RegisterFlagCompletionFunc("policy", cobra.FixedCompletions(
		[]string{rundir.PolicyBestEffort, rundir.PolicyStrict}, cobra.ShellCompDirectiveNoFileComp))
	return c
}

// freezeInput resolves a recipe or adjust file to an absolute path that exists. Without the flag
// it is the run's own file when needed (or present), else none.
func (a *app) freezeInput(dir rundir.Dir, flag, given, name string, needed bool, hint string) (string, error) {
	p := given
	if p == "" {
		p = dir.Path(name)
		if !needed {
			return "", nil
		}
	} else {
		p = a.resolveInput(p)
	}
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) && given == "":
		return "", usageErr(fmt.Sprintf("freeze: no %s given and %s does not exist", flag, p), hint)
	case errors.Is(err, fs.ErrNotExist):
		return "", usageErr(fmt.Sprintf("freeze: %s %s does not exist", flag, given), "paths are relative to the current directory or the run directory")
	case err != nil:
		return "", err
	case fi.IsDir():
		return "", usageErr(fmt.Sprintf("freeze: %s %s is a directory", flag, given), "name the file")
	}
	return filepath.Abs(p)
}

// checkReplayFiles reads the recipe and adjust files as the replay will, and says what they hold.
func checkReplayFiles(recipePath, adjustPath string) (string, error) {
	if recipePath == "" && adjustPath == "" {
		return "", nil
	}
	var entries []rundir.RecipeEntry
	var parts []string
	if recipePath != "" {
		var err error
		if entries, err = rundir.ReadRecipe(recipePath); err != nil {
			return "", usageErr("freeze: the recipe is invalid: "+oneLine(err.Error()), "'hotcb recipe validate --recipe "+recipePath+"' lists the problems")
		}
		parts = append(parts, fmt.Sprintf("recipe: %d entries", len(entries)))
	}
	if adjustPath != "" {
		adj, err := rundir.ReadAdjust(adjustPath)
		if err != nil {
			return "", usageErr("freeze: the adjust file is invalid: "+oneLine(err.Error()), "'hotcb recipe patch-template' shows the format")
		}
		parts = append(parts, fmt.Sprintf("adjust: %d patches", len(adj.Patches)))
		if recipePath != "" {
			out, err := rundir.ApplyAdjust(entries, adj)
			if err != nil {
				return "", usageErr("freeze: the adjust file does not apply to the recipe: "+err.Error(), "'hotcb recipe validate' checks both")
			}
			parts = append(parts, fmt.Sprintf("adjusted recipe: %d entries", len(out)))
		}
	}
	return strings.Join(parts, "; "), nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
