package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
)

// TestBadInput: every bad input is an error naming the problem, and nothing is appended or
// written (the commands and freeze files are compared byte for byte).
func TestBadInput(t *testing.T) {
	dir := newRunDir(t)
	mustRun(t, "--dir", dir, "enable", "before") // a non-empty commands file
	tmp := t.TempDir()
	py := filepath.Join(tmp, "cb.py")
	txt := filepath.Join(tmp, "cb.txt")
	goDir := filepath.Join(tmp, "dir.go")
	writeFile(t, py, "class X: pass\n")
	writeFile(t, txt, "x\n")
	require.NoError(t, os.Mkdir(goDir, 0o700))
	notDir := filepath.Join(tmp, "plain")
	writeFile(t, notDir, "")
	badRecipe := filepath.Join(tmp, "bad.recipe.jsonl")
	writeFile(t, badRecipe, "{\"at\":{\"step\":1},\"module\":\"cb\",\"op\":\"bogus\",\"id\":\"x\"}\n")
	goodRecipe := filepath.Join(tmp, "good.recipe.jsonl")
	writeFile(t, goodRecipe, "{\"at\":{\"step\":1,\"event\":\"train_step_end\"},\"module\":\"opt\",\"op\":\"set_params\",\"id\":\"main\",\"params\":{\"lr\":0.1}}\n")
	badAdjust := filepath.Join(tmp, "bad.adjust.yaml")
	writeFile(t, badAdjust, "version: 1\npatches:\n  - match: {module: opt}\n")
	writeFile(t, filepath.Join(dir, rundir.Status), `{"written_at":"2026-11-29T11:59:58Z","pid":1,"step":3,"callbacks":[{"id":"timing","enabled":true,"loaded":true,"calls":3,"errors":0,"mean_us":1,"max_us":2}]}`)
	missing := filepath.Join(tmp, "no-such-run")

	const path = "--path"
	for _, tc := range []struct {
		args []string
		want string // in the error
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "hotcb"`},
		{[]string{"stauts"}, "did you mean status?"},
		{[]string{"cb", "bogus", "x"}, `unknown command "bogus" for "hotcb cb"`},
		{[]string{"opt", "bogus"}, `unknown command "bogus" for "hotcb opt"`},
		{[]string{"recipe", "bogus"}, `unknown command "bogus" for "hotcb recipe"`},
		{[]string{"--bogus", "status"}, "unknown flag: --bogus"},
		{[]string{"cb", "enable", "t", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"cb", "enable"}, "needs a callback ID"},
		{[]string{"enable"}, "needs a callback ID"},
		{[]string{"cb", "enable", "a", "b"}, "takes one a callback ID, got 2 arguments"},
		{[]string{"cb", "enable", " "}, "is empty"},
		{[]string{"cb", "set_params"}, "needs a callback ID"},
		{[]string{"cb", "set_params", "t"}, "no key=value pairs"},
		{[]string{"cb", "set_params", "t", "every"}, `expected key=value, got "every"`},
		{[]string{"cb", "set_params", "t", "every=1", "x"}, `expected key=value, got "x"`},
		{[]string{"cb", "set_params", "t", "=3"}, "has no key"},
		{[]string{"cb", "set", "t", "x=1e999"}, "out of range"},
		{[]string{"cb", "load", "t", "--symbol", "S"}, "no callback source given"},
		{[]string{"cb", "load", "t", path, "p", "--file", "x.go", "--symbol", "S"}, "mutually exclusive"},
		{[]string{"cb", "load", "t", path, "p"}, "--symbol is required"},
		{[]string{"cb", "load", "t", path, "", "--symbol", "S"}, "--path is empty"},
		{[]string{"cb", "load", path, "p", "--symbol", "S"}, "needs a callback ID"},
		{[]string{"cb", "load", "t", "--file", filepath.Join(tmp, "missing.go"), "--symbol", "S"}, "does not exist"},
		{[]string{"cb", "load", "t", "--file", py, "--symbol", "S"}, "Python callbacks cannot run in a Go process"},
		{[]string{"cb", "load", "t", "--file", txt, "--symbol", "S"}, "is not a .go file"},
		{[]string{"cb", "load", "t", "--file", goDir, "--symbol", "S"}, "not a regular file"},
		{[]string{"cb", "load", "t", path, "hotcb.modules.cb.callbacks.timing", "--symbol", "Timing"}, "that path has: TimingCallback"},
		{[]string{"cb", "load", "t", path, "hotcb.modules.cb.callbacks.nope", "--symbol", "X"}, "no built-in callback under"},
		{[]string{"cb", "load", "t", path, "github.com/hotcb/hotcb/callbacks/timing", "--symbol", "TimingCallback"}, "that path has: Timing"},
		{[]string{"cb", "load", "t", path, "p", "--symbol", "S", "--enabled", "--no-enabled"}, "contradict"},
		{[]string{"cb", "load", "t", path, "p", "--symbol", "S", "stray"}, `unexpected argument "stray"`},
		{[]string{"cb", "load", "t", path, "p", "--symbol", "S", "--init", "every"}, `expected key=value`},
		{[]string{"opt", "set_params"}, "no key=value pairs"},
		{[]string{"opt", "set_params", "--id", "", "lr=1"}, "--id is empty"},
		{[]string{"opt", "enable", "extra"}, "takes no arguments"},
		{[]string{"set", "foo=1"}, "cannot tell whether foo belong to opt or loss"},
		{[]string{"set"}, "no key=value pairs"},
		{[]string{"status", "nope"}, `no callback "nope" in the status of pid 1 (hint: known: timing)`},
		{[]string{"status", "a", "b"}, "at most one callback ID"},
		{[]string{"freeze"}, "--mode is required"},
		{[]string{"freeze", "--mode", "bogus"}, `unknown freeze mode "bogus"`},
		{[]string{"freeze", "--mode", "replay", "--policy", "bogus"}, `unknown policy "bogus"`},
		{[]string{"freeze", "--mode", "replay"}, "no --recipe given and"},
		{[]string{"freeze", "--mode", "replay", "--recipe", filepath.Join(tmp, "nope.jsonl")}, "does not exist"},
		{[]string{"freeze", "--mode", "replay", "--recipe", badRecipe}, "the recipe is invalid"},
		{[]string{"freeze", "--mode", "replay", "--recipe", tmp}, "is a directory"},
		{[]string{"freeze", "--mode", "replay_adjusted", "--recipe", goodRecipe}, "no --adjust given and"},
		{[]string{"freeze", "--mode", "replay_adjusted", "--recipe", goodRecipe, "--adjust", badAdjust}, "the adjust file is invalid"},
		{[]string{"freeze", "--mode", "prod", "--step-offset", "x"}, `invalid argument "x"`},
		{[]string{"freeze", "--mode", "prod", "extra"}, "takes no arguments"},
		{[]string{"ledger", "--tail", "-1"}, "is negative"},
		{[]string{"recipe", "validate", "--recipe", filepath.Join(tmp, "nope.jsonl")}, "does not exist"},
		{[]string{"recipe", "validate", "--recipe", badRecipe}, "is invalid (1 problems"},
		{[]string{"recipe", "export"}, "no applied ledger"},
		{[]string{"recipe", "patch-template", "--write", "--output", filepath.Join(tmp, "a.yaml")}, "mutually exclusive"},
		{[]string{"recipe", "patch-template", "--recipe", filepath.Join(tmp, "nope.jsonl")}, "does not exist"},
		{[]string{"init", "extra"}, "takes no arguments"},
		{[]string{"version", "extra"}, "takes no arguments"},
		{[]string{"ops", "tril", "triu"}, `ops takes at most one filter, got "tril triu"`},
		{[]string{"ops", " "}, "ops: the filter is empty"},
		{[]string{"ops", "tril["}, `ops: bad pattern "tril["`},
		{[]string{"ops", "--bogus"}, "unknown flag: --bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := snapshotFiles(t, dir)
			r := runAt(t, testNow, append([]string{"--dir", dir}, tc.args...)...)
			require.Error(t, r.err, "stdout: %s", r.out)
			require.Contains(t, r.err.Error(), tc.want)
			require.Equal(t, before, snapshotFiles(t, dir), "the run directory changed")
		})
	}

	// A run directory that does not exist (or is a file) is refused, and not created.
	for _, args := range [][]string{
		{"enable", "t"}, {"cb", "set_params", "t", "a=1"}, {"opt", "set_params", "lr=1"}, {"status"}, {"ledger"},
		{"freeze", "--mode", "prod"}, {"recipe", "export"}, {"recipe", "validate"}, {"recipe", "patch-template"},
	} {
		r := runCLI(t, append([]string{"--dir", missing}, args...)...)
		require.Error(t, r.err, "%v", args)
		require.Contains(t, r.err.Error(), "run directory "+missing+" does not exist (hint: create it with 'hotcb --dir "+missing+" init'")
		require.NoDirExists(t, missing)
		r = runCLI(t, append([]string{"--dir", notDir}, args...)...)
		require.ErrorContains(t, r.err, "is not a directory", "%v", args)
	}
}

// snapshotFiles is the content of every file in the run directory.
func snapshotFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	}))
	return out
}

// TestRunExitStatus: the binary's behaviour through Run — one line on stderr, status 2 for bad
// input and 1 for a failure, 0 and nothing on stderr for success.
func TestRunExitStatus(t *testing.T) {
	dir := newRunDir(t)
	for _, tc := range []struct {
		args []string
		code int
		line string
	}{
		{[]string{"--dir", dir, "enable", "t"}, 0, ""},
		{[]string{"--dir", dir, "bogus"}, 2, `hotcb: unknown command "bogus" for "hotcb" (hint: one of: `},
		{[]string{"--dir", dir, "cb", "enable", "t", "--nope"}, 2, "hotcb: unknown flag: --nope (hint: see 'hotcb cb enable --help')"},
		{[]string{"--dir", dir, "cb", "set", "t", "every"}, 2, `hotcb: expected key=value, got "every" (hint: `},
		{[]string{"--dir", dir, "freeze", "--mode", "replay"}, 2, "hotcb: freeze: no --recipe given"},
		{[]string{"--dir", dir, "recipe", "export"}, 1, "hotcb: no applied ledger at"},
		{[]string{"--dir", dir, "status", "x"}, 1, "hotcb: no status yet"},
		{[]string{"ops", "trill"}, 1, `hotcb: no generated ATen op matches "trill" (hint: did you mean tril`},
		{[]string{"ops", "a", "b"}, 2, `hotcb: ops takes at most one filter`},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), tc.args, &out, &errOut)
		require.Equal(t, tc.code, code, "%v: %s", tc.args, errOut.String())
		if tc.line == "" {
			require.Empty(t, errOut.String())
			continue
		}
		require.True(t, strings.HasPrefix(errOut.String(), tc.line), "%v: got %q", tc.args, errOut.String())
		require.Equal(t, 1, strings.Count(errOut.String(), "\n"), "one line: %q", errOut.String())
	}
	// No arguments: the help, successfully.
	var out bytes.Buffer
	require.Equal(t, 0, Run(context.Background(), nil, &out, &out))
	require.Contains(t, out.String(), "Available Commands:")
}

// TestHelpHasExamples: every command has a short description and examples, and --help works.
func TestHelpHasExamples(t *testing.T) {
	root := NewRootCommand(&bytes.Buffer{}, &bytes.Buffer{})
	var names []string
	for _, c := range allCommands(root) {
		if c.Name() == "help" || c.Parent() != nil && c.Parent().Name() == "completion" || c.Name() == "completion" {
			continue
		}
		names = append(names, c.CommandPath())
		require.NotEmpty(t, c.Short, c.CommandPath())
		require.NotEmpty(t, c.Example, c.CommandPath())
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "hotcb")), "--help")
		r := runCLI(t, args...)
		require.NoError(t, r.err, "%v", args)
		require.Contains(t, r.out, "Examples:", "%v", args)
	}
	for _, want := range []string{"hotcb init", "hotcb cb load", "hotcb cb set_params", "hotcb opt set_params", "hotcb status",
		"hotcb ledger", "hotcb freeze", "hotcb recipe export", "hotcb recipe validate", "hotcb recipe patch-template", "hotcb version",
		"hotcb enable", "hotcb disable", "hotcb set", "hotcb loss set_params", "hotcb ops"} {
		require.Contains(t, names, want)
	}
}

func allCommands(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for _, s := range c.Commands() {
		out = append(out, allCommands(s)...)
	}
	return out
}

// TestCompletion: cobra's completion scripts, and completion of freeze modes.
func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out := mustRun(t, "completion", sh)
		require.Contains(t, out, "hotcb", sh)
	}
	r := runCLI(t, "__complete", "freeze", "--mode", "")
	require.NoError(t, r.err)
	require.Contains(t, r.out, "replay_adjusted")
	r = runCLI(t, "__complete", "cb", "")
	require.NoError(t, r.err)
	require.Contains(t, r.out, "set_params")
}

func TestRelativeFileNotFoundNamesTheDirectory(t *testing.T) {
	dir := newRunDir(t)
	wd, err := os.Getwd()
	require.NoError(t, err)
	r := runCLI(t, "--dir", dir, "cb", "load", "t", "--file", "callbacks/nowhere.go", "--symbol", "S")
	require.ErrorContains(t, r.err, "cb load: --file callbacks/nowhere.go does not exist (looked in "+wd+")")
}
