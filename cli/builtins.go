package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/callbacks/spec"
)

// The built-ins are described in package spec (pure Go: hotcb does not link them, nor libtorch);
// the template, the name checks and `hotcb builtins` read the descriptions.

// configTemplate is the hotcb.yaml that `hotcb init` writes: the built-ins loaded but disabled
// (so `hotcb enable ID` turns one on), examples commented out, and whatever else the registry of
// this binary holds (registered: Torch.Registered; none in hotcb) named at the end.
func configTemplate(registered []string) string {
	var sb strings.Builder
	sb.WriteString(`# hotcb.yaml — the callbacks this run should have. The training process reconciles it when the
# file changes, so it can be edited while training runs; hotcb.commands.jsonl acts on top of it.
# An entry: enabled, target {kind: module | go_file, path, symbol}, init (constructor values),
# params (set_params after the load). A built-in is named by its hotcb name (as below) or by its
# Go name (in the comment): both load the same callback.
#
# The built-ins below are loaded disabled: turn one on with 'hotcb enable ID' (or enabled: true
# here) and tune it with 'hotcb cb set_params ID key=value'.
version: 1
callbacks:
`)
	entry := func(prefix string, b *spec.Builtin, enabled bool) {
		fmt.Fprintf(&sb, "%s%s:  # %s; Go: %s#%s\n", prefix, b.Hotcb, b.About, b.GoPath(), b.Name)
		fmt.Fprintf(&sb, "%s  enabled: %v\n", prefix, enabled)
		fmt.Fprintf(&sb, "%s  target: {kind: module, path: %s, symbol: %s}\n", prefix, b.HotcbPath(), b.HotcbSymbol)
		fmt.Fprintf(&sb, "%s  init: %s\n", prefix, b.Init)
	}
	for _, b := range spec.All {
		if !b.Example {
			entry("  ", b, false)
		}
	}
	sb.WriteString("\n  # Examples: uncomment to load.\n")
	for _, b := range spec.All {
		if b.Example {
			entry("  # ", b, true)
		}
	}
	sb.WriteString(`  # grad_norm:  # a callback from a Go source file, interpreted, reloaded when the file changes
  #   enabled: true
  #   target: {kind: go_file, path: examples/callbacks/grad_norm.go, symbol: GradNorm}
  #   init: {every: 10}
`)
	if extra := unlisted(registered); len(extra) > 0 {
		sb.WriteString("\n# Also registered in this binary (target: {kind: module, path: PATH, symbol: SYMBOL}):\n")
		for _, n := range extra {
			sb.WriteString("#   " + n + "\n")
		}
	}
	return sb.String()
}

// unlisted returns the registered path#symbol names that are not a built-in's.
func unlisted(registered []string) []string {
	known := builtinNames()
	var out []string
	for _, n := range registered {
		if !known[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// builtinNames are the path#symbol names callbacks.Provide gives the built-ins (spec.Targets):
// the Go path, hotcb's module path and hotcb's package.
func builtinNames() map[string]bool {
	known := map[string]bool{}
	for _, b := range spec.All {
		for _, t := range b.Targets() {
			known[t.String()] = true
		}
	}
	return known
}

// checkBuiltinTarget refuses a module target that names a built-in package but no callback in it
// — surely a typo. Other paths are the training program's own and only it can resolve them.
func checkBuiltinTarget(path, symbol string) error {
	py := path == spec.PythonPackage || strings.HasPrefix(path, spec.PythonPackage+".")
	if !py && !strings.HasPrefix(path, spec.GoPackage+"/") {
		return nil
	}
	known := builtinNames()
	if known[path+"#"+symbol] {
		return nil
	}
	var same []string
	for n := range known {
		if p, s, _ := strings.Cut(n, "#"); p == path {
			same = append(same, s)
		}
	}
	if len(same) > 0 {
		sort.Strings(same)
		return usageErr(fmt.Sprintf("no built-in callback %s#%s", path, symbol), "that path has: "+strings.Join(same, ", "))
	}
	var names []string
	for _, b := range spec.All {
		if py {
			names = append(names, b.HotcbPath()+" "+b.HotcbSymbol)
		} else {
			names = append(names, b.GoPath()+" "+b.Name)
		}
	}
	return usageErr(fmt.Sprintf("no built-in callback under %s", path), "built-ins (--path --symbol): "+strings.Join(names, "; "))
}

func init() { register(newBuiltinsCommand) }

func newBuiltinsCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "builtins [NAME]",
		Short: "List the built-in callbacks, or one with its params and their defaults",
		Long: `builtins lists the callbacks every hotcb-go training program has (callbacks/all), one a line:
the id hotcb init gives it (its hotcb name), its Go name and what it does. With a NAME (hotcb
or Go name, in any case) it shows that one: the --path and --symbol that load it, and each
param that init and set_params take, with its default, type, rules and doc.`,
		Example: `  hotcb builtins
  hotcb builtins timing
  hotcb builtins FeatureViz`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErr(fmt.Sprintf("builtins takes at most one name, got %q", strings.Join(args, " ")), "usage: "+cmd.UseLine())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				tw := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
				for _, b := range spec.All {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Hotcb, b.Name, b.About)
				}
				return tw.Flush()
			}
			b, ok := spec.Lookup(strings.TrimSpace(args[0]))
			if !ok {
				names := make([]string, len(spec.All))
				for i, b := range spec.All {
					names[i] = b.Hotcb
				}
				return usageErr(fmt.Sprintf("no built-in callback %q", args[0]), "built-ins: "+strings.Join(names, ", "))
			}
			_, err := io.WriteString(a.out, describeBuiltin(b))
			return err
		},
	}
}

// describeBuiltin is `hotcb builtins NAME`'s text.
func describeBuiltin(b *spec.Builtin) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s (%s): %s\n", b.Hotcb, b.Name, b.About)
	fmt.Fprintf(&sb, "  load:  --path %s --symbol %s\n", b.HotcbPath(), b.HotcbSymbol)
	fmt.Fprintf(&sb, "     or  --path %s --symbol %s\n", b.GoPath(), b.Name)
	sb.WriteString(wrap(b.Doc, "  ", 96))
	sb.WriteString("params (init and set_params):\n")
	for _, p := range b.Params() {
		what := p.Type
		if p.Rules != "" {
			what += ", " + p.Rules
		}
		fmt.Fprintf(&sb, "  %s: %s  (%s)\n", p.Key, spec.Flow(p.Default), what)
		sb.WriteString(wrap(p.Doc, "      ", 96))
	}
	return sb.String()
}

// wrap fills text into lines of at most width columns (a longer word has a line to itself), each
// starting with indent.
func wrap(text, indent string, width int) string {
	var sb strings.Builder
	line := indent
	for _, w := range strings.Fields(text) {
		if line != indent && len(line)+1+len(w) > width {
			sb.WriteString(line + "\n")
			line = indent
		}
		if line != indent {
			line += " "
		}
		line += w
	}
	if line != indent {
		sb.WriteString(line + "\n")
	}
	return sb.String()
}
