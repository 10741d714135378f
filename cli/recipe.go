package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/rundir"
)

func init() { register(newRecipeCommand) }

func newRecipeCommand(a *app) *cobra.Command {
	r := group(&cobra.Command{
		Use:   "recipe",
		Short: "Export a run's applied ops as a recipe, check recipes and adjust files",
		Long: `A recipe (hotcb.recipe.jsonl) is the list of ops a run applied, each with the step and event it
was applied at; 'hotcb freeze --mode replay' plays it back in another run, and an adjust file
(hotcb.adjust.yaml) patches it on the way (replay_adjusted).`,
		Example: `  hotcb --dir runs/exp1 recipe export
  hotcb --dir runs/exp2 recipe patch-template --recipe runs/exp1/hotcb.recipe.jsonl --write
  hotcb --dir runs/exp2 recipe validate --recipe runs/exp1/hotcb.recipe.jsonl --adjust hotcb.adjust.yaml`,
	})
	r.AddCommand(newRecipeExport(a), newRecipeValidate(a), newPatchTemplate(a))
	return r
}

func newRecipeExport(a *app) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "export [--out FILE]",
		Short: "Write the recipe of a run from its applied ledger",
		Long: `export reads hotcb.applied.jsonl and writes the applied ops of the cb, opt and loss modules, in
order, with the step and event of each, to hotcb.recipe.jsonl in the run directory (or --out,
relative to the current directory). The file is replaced atomically.`,
		Example: `  hotcb --dir runs/exp1 recipe export
  hotcb --dir runs/exp1 recipe export --out /tmp/exp1.recipe.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.runDir()
			if err != nil {
				return err
			}
			ledger := dir.Path(rundir.Applied)
			entries, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](ledger)
			if errors.Is(err, fs.ErrNotExist) {
				return hinted(fmt.Errorf("no applied ledger at %s", ledger), "the training process writes it as it applies commands; export after (or during) a run")
			}
			if err != nil {
				return err
			}
			for _, e := range bad {
				fmt.Fprintf(a.errOut, "hotcb: skipped: %v\n", e)
			}
			recipe, err := rundir.ExportRecipe(entries)
			if err != nil {
				return err
			}
			if out == "" {
				out = dir.Path(rundir.Recipe)
			}
			if err := rundir.WriteRecipe(out, recipe); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "exported %d recipe entries (from %d ledger entries) to %s\n", len(recipe), len(entries), out)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "recipe file to write (default: the run's hotcb.recipe.jsonl)")
	return c
}

func newRecipeValidate(a *app) *cobra.Command {
	var recipe, adjust string
	c := &cobra.Command{
		Use:   "validate [--recipe FILE] [--adjust FILE]",
		Short: "Check a recipe (and an adjust file against it) as a replay would read them",
		Long: `validate parses every line of the recipe (default: the run's hotcb.recipe.jsonl) and checks each
op; with --adjust it also parses the adjust file and applies it, and says how many entries the
adjusted recipe has. Problems are listed one a line and the exit status is 1.`,
		Example: `  hotcb --dir runs/exp1 recipe validate
  hotcb --dir runs/exp2 recipe validate --recipe runs/exp1/hotcb.recipe.jsonl --adjust hotcb.adjust.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.runDir()
			if err != nil {
				return err
			}
			rp := dir.Path(rundir.Recipe)
			if recipe != "" {
				rp = a.resolveInput(recipe)
			}
			entries, err := rundir.ReadRecipe(rp)
			if errors.Is(err, fs.ErrNotExist) {
				return usageErr(fmt.Sprintf("recipe %s does not exist", rp), "make one with 'hotcb recipe export', or name it with --recipe")
			}
			if err != nil {
				return a.listProblems("recipe "+rp, err)
			}
			fmt.Fprintf(a.out, "recipe %s: %d entries, valid\n", rp, len(entries))
			if adjust == "" {
				return nil
			}
			ap := a.resolveInput(adjust)
			adj, err := rundir.ReadAdjust(ap)
			if errors.Is(err, fs.ErrNotExist) {
				return usageErr(fmt.Sprintf("adjust file %s does not exist", ap), "start one with 'hotcb recipe patch-template --write'")
			}
			if err != nil {
				return a.listProblems("adjust file "+ap, err)
			}
			out, err := rundir.ApplyAdjust(entries, adj)
			if err != nil {
				return a.listProblems("adjust file "+ap, err)
			}
			fmt.Fprintf(a.out, "adjust %s: %d patches, valid; adjusted recipe: %d entries\n", ap, len(adj.Patches), len(out))
			return nil
		},
	}
	c.Flags().StringVar(&recipe, "recipe", "", "recipe file (default: the run's hotcb.recipe.jsonl)")
	c.Flags().StringVar(&adjust, "adjust", "", "adjust file to check against the recipe")
	return c
}

// listProblems prints each problem of err on its own line and returns a one-line summary.
func (a *app) listProblems(what string, err error) error {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	fmt.Fprintf(a.out, "%s is invalid:\n", what)
	for _, l := range lines {
		fmt.Fprintln(a.out, "  "+l)
	}
	return fmt.Errorf("%s is invalid (%d problems, listed above)", what, len(lines))
}

func newPatchTemplate(a *app) *cobra.Command {
	var recipe, output string
	var write bool
	c := &cobra.Command{
		Use:   "patch-template [--recipe FILE] [--write | --output FILE]",
		Short: "Print (or write) a commented adjust file to start from",
		Long: `patch-template prints an example hotcb.adjust.yaml with every kind of patch (replace_params,
shift_step, transform_params, drop, insert), followed by a commented match for each (module, op,
id) of the recipe (default: the run's hotcb.recipe.jsonl, if there is one). --write writes it to
the run's hotcb.adjust.yaml and --output to FILE; neither overwrites an existing file.`,
		Example: `  hotcb --dir runs/exp2 recipe patch-template
  hotcb --dir runs/exp2 recipe patch-template --recipe runs/exp1/hotcb.recipe.jsonl --write`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if write && output != "" {
				return usageErr("--write and --output are mutually exclusive", "--write writes the run's hotcb.adjust.yaml, --output FILE another file")
			}
			dir, err := a.runDir()
			if err != nil {
				return err
			}
			rp := dir.Path(rundir.Recipe)
			if recipe != "" {
				rp = a.resolveInput(recipe)
				if !exists(rp) {
					return usageErr(fmt.Sprintf("recipe %s does not exist", recipe), "make one with 'hotcb recipe export'")
				}
			}
			text := rundir.PatchTemplate + recipeStubs(rp)
			if write {
				output = dir.Path(rundir.Adjust)
			}
			if output == "" {
				_, err := fmt.Fprint(a.out, text)
				return err
			}
			created, err := createNew(output, text)
			if err != nil {
				return err
			}
			if !created {
				return usageErr(fmt.Sprintf("%s exists; not overwritten", output), "edit it, or remove it first")
			}
			fmt.Fprintf(a.out, "wrote %s (edit it, then 'hotcb recipe validate --adjust %s')\n", output, output)
			return nil
		},
	}
	c.Flags().StringVar(&recipe, "recipe", "", "recipe whose entries to list (default: the run's hotcb.recipe.jsonl)")
	c.Flags().BoolVar(&write, "write", false, "write the run's hotcb.adjust.yaml instead of printing")
	c.Flags().StringVar(&output, "output", "", "write to this file instead of printing")
	return c
}

// recipeStubs lists a commented match per distinct (module, op, id) of the recipe at path, as
// hotcb's patch-template does; nothing when there is no readable recipe.
func recipeStubs(path string) string {
	entries, _, err := rundir.ReadJSONL[rundir.RecipeEntry](path)
	if err != nil || len(entries) == 0 {
		return ""
	}
	type key struct{ module, op, id string }
	seen := map[key]bool{}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n  # The entries of %s, one match each (uncomment a patch and add an action):\n", path)
	for _, e := range entries {
		k := key{e.Module, e.Op, e.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		m := fmt.Sprintf("module: %s, op: %s", yamlScalar(e.Module), yamlScalar(e.Op))
		if e.ID != "" {
			m += ", id: " + yamlScalar(e.ID)
		}
		fmt.Fprintf(&sb, "  # - match: {%s}  # first at step %d\n  #   shift_step: 0\n", m, e.At.Step)
	}
	return sb.String()
}

// yamlScalar quotes a value that YAML would otherwise misread.
func yamlScalar(s string) string {
	for _, r := range s {
		if !(r == '_' || r == '-' || r == '.' || r == '/' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Sprintf("%q", s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
