package gofile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// typedSrc is a go_file callback written from the callback contract: it switches on the Go types
// of its params (int64 for integers, float64 for other numbers) and refuses any other.
const typedSrc = `package typed

import (
	"fmt"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/torchenv"
)

type typed struct {
	id    string
	every int64
	lr    float64
	dims  []int64
}

func (c *typed) ID() string { return c.id }

func (c *typed) Handle(event string, env *torchenv.Env) error {
	env.Logf("%s every=%d lr=%g dims=%v", c.id, c.every, c.lr, c.dims)
	return nil
}

func (c *typed) SetParams(p map[string]any) error {
	for k, v := range p {
		switch k {
		case "every":
			n, ok := v.(int64)
			if !ok {
				return fmt.Errorf("every: want an int64, got %T", v)
			}
			c.every = n
		case "lr":
			f, ok := v.(float64)
			if !ok {
				return fmt.Errorf("lr: want a float64, got %T", v)
			}
			c.lr = f
		case "dims":
			l, ok := v.([]any)
			if !ok {
				return fmt.Errorf("dims: want a []any, got %T", v)
			}
			var dims []int64
			for _, e := range l {
				n, ok := e.(int64)
				if !ok {
					return fmt.Errorf("dims: want int64 elements, got %T", e)
				}
				dims = append(dims, n)
			}
			c.dims = dims
		}
	}
	return nil
}

func New(id string, init map[string]any) (callback.HotCallback, error) {
	c := &typed{id: id}
	if err := c.SetParams(init); err != nil {
		return nil, err
	}
	return c, nil
}
`

// A go_file callback that switches on int64 and float64 gets those types from hotcb.yaml, from
// command lines (hotcb-go's CLI and hotcb's Python CLI) and, in a second run, from the replay of
// the first run's recipe.
func TestGoFileCallbackGetsInt64AndFloat64FromEverySource(t *testing.T) {
	src := write(t, t.TempDir(), "typed.go", typedSrc)
	dir1 := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir1, rundir.Config), []byte(`version: 1
callbacks:
  timing:
    target: {kind: go_file, path: `+src+`, symbol: New}
    init: {every: 50, lr: 0.5, dims: [1, 2]}
`), 0o600))
	// `hotcb cb set_params timing lr=0.001 dims=[3]` as hotcb-go's CLI writes it.
	kv, err := cli.ParseKV([]string{"lr=0.001", "dims=[3]"})
	require.NoError(t, err)
	goLine, err := ops.Marshal(ops.Op{Module: "cb", Op: ops.OpSetParams, ID: "timing", Params: kv})
	require.NoError(t, err)
	// The exact line of hotcb's Python CLI (its reference data, cli-commands.jsonl).
	const pyLine = `{"module": "cb", "op": "set_params", "id": "timing", "params": {"every": 20, "window": 100}}`

	run := func(dir string, steps int, between func(step int)) []string {
		k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true, AllowAnyOwner: true}})
		require.NoError(t, err)
		var lines []string
		env := &torchenv.Env{Log: func(s string) {
			if strings.HasPrefix(s, "timing ") {
				lines = append(lines, s)
			}
		}}
		for i := 0; i < steps; i++ {
			if between != nil {
				between(i)
			}
			k.Apply(env, torchenv.TrainStepEnd)
			env.Step++
		}
		require.NoError(t, k.Close())
		for _, e := range readLedgerOf(t, dir) {
			if e.Error != nil {
				require.Failf(t, "an op failed", "%s %s: %s", e.Op, e.Source, *e.Error)
			}
		}
		return lines
	}
	cmds := filepath.Join(dir1, rundir.Commands)
	lines := run(dir1, 3, func(step int) {
		switch step {
		case 1:
			require.NoError(t, rundir.AppendLine(cmds, goLine))
		case 2:
			require.NoError(t, rundir.AppendLine(cmds, []byte(pyLine)))
		}
	})
	want := []string{"timing every=50 lr=0.5 dims=[1 2]", "timing every=50 lr=0.001 dims=[3]", "timing every=20 lr=0.001 dims=[3]"}
	require.Equal(t, want, lines, "YAML, hotcb-go's CLI, hotcb's CLI")

	recipe, err := rundir.ExportRecipe(readLedgerOf(t, dir1))
	require.NoError(t, err)
	dir2 := t.TempDir()
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
	require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), []byte(`{"mode":"replay","policy":"strict"}`), 0o600))
	require.Equal(t, want, run(dir2, 3, nil), "the replay of the recipe")
}

func readLedgerOf(t *testing.T, dir string) []rundir.LedgerEntry {
	t.Helper()
	l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, l.Bad)
	return l.Entries
}
