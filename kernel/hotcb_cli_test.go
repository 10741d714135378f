package kernel_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	_ "github.com/hotcb/hotcb/callbacks/all" // timing, by hotcb's name
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/internal/torchpy"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/loss"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// featVizGo is the callbacks/feat_viz.go that hotcb's `cb load feat_viz --file callbacks/feat_viz.go
// --symbol FeatureVizCallback` names, written as the README shows: its SetParams switches on the
// Go types the README promises.
const featVizGo = `package callbacks

import (
	"fmt"

	"github.com/hotcb/hotcb/torchenv"
)

type FeatureVizCallback struct {
	Name  string ` + "`hotcb:\"id\"`" + `
	Every int64  ` + "`hotcb:\"every\"`" + `
}

func (c *FeatureVizCallback) ID() string { return c.Name }

func (c *FeatureVizCallback) Handle(event string, env *torchenv.Env) error {
	if c.Every > 0 && env.Step%c.Every == 0 {
		env.Logf("feat_viz.go every=%d step %d", c.Every, env.Step)
	}
	return nil
}

func (c *FeatureVizCallback) SetParams(p map[string]any) error {
	for k, v := range p {
		switch k {
		case "every":
			n, ok := v.(int64)
			if !ok {
				return fmt.Errorf("every: want an integer, got %T", v)
			}
			c.Every = n
		default:
			return fmt.Errorf("unknown param %q", k)
		}
	}
	return nil
}
`

// TestDrivenByHotcbsPythonCLI drives a run with the exact lines and files hotcb's own Python CLI
// writes (testdata/hotcb-python): cb, opt and loss ops apply, its freeze files freeze and
// unfreeze the run, and the recipe exported from the ledger is the one hotcb's export builds
// from that ledger and reads as hotcb's replay reads it.
func TestDrivenByHotcbsPythonCLI(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root) // hotcb's CLI wrote the go_file's path relative to where it ran
	require.NoError(t, os.Mkdir("callbacks", 0o700))
	require.NoError(t, os.WriteFile(filepath.Join("callbacks", "feat_viz.go"), []byte(featVizGo), 0o600))
	testdata := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(testdataDir, "hotcb-python", name))
		require.NoError(t, err)
		return b
	}

	dir := filepath.Join(root, "run")
	var logged []string
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true,
		Log: func(s string) { logged = append(logged, s) }}})
	require.NoError(t, err)
	w := bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	opt, err := optim.NewSGD(optim.Params(w), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	k.RegisterOptimizer("main", opt)
	l := loss.New(loss.Term{Name: "ce", Weight: 1}, loss.Term{Name: "aux", Weight: 0})
	k.RegisterLoss("main", l)
	env := &torchenv.Env{Phase: "train"}
	cmds := filepath.Join(dir, rundir.Commands)
	step := func() {
		k.Apply(env, torchenv.TrainStepEnd)
		env.Step++
	}
	appendLine := func(line []byte) { require.NoError(t, rundir.AppendLine(cmds, line)) }
	freeze := func(b []byte) { require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Freeze), b, 0o600)) }

	freeze(testdata("init-freeze.json")) // what hotcb's init leaves: mode off
	step()
	for _, line := range bytes.Split(bytes.TrimSpace(testdata("cli-commands.jsonl")), []byte("\n")) {
		appendLine(line)
		step()
		step()
		if bytes.Contains(line, []byte(`"id": "feat_viz", "target"`)) {
			// as hotcb writes `cb set_params feat_viz every=3`: the file's SetParams gets an int64
			appendLine([]byte(`{"module": "cb", "op": "set_params", "id": "feat_viz", "params": {"every": 3}}`))
			step()
		}
	}
	require.Equal(t, 0.001, opt.Hyper(0)["lr"])
	require.Equal(t, 0.01, opt.Hyper(0)["weight_decay"])
	require.Equal(t, 1.0, l.Weight("ce", env.Step))
	require.Equal(t, 0.5, l.Weight("aux", env.Step))

	freeze(testdata("freeze-prod.json"))
	step()
	appendLine([]byte(`{"module": "cb", "op": "disable", "id": "timing"}`))
	step()
	freeze(testdata("freeze-off.json"))
	step()
	appendLine([]byte(`{"module": "cb", "op": "disable", "id": "timing"}`))
	step()
	require.NoError(t, k.Close())
	for _, s := range logged {
		require.NotContains(t, s, "freeze: ", "hotcb's freeze files read without complaint")
	}

	ledger, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	var got []string
	for _, e := range ledger {
		s := e.Module + "." + e.Op + " " + e.Decision
		if e.Error != nil {
			s += ": " + *e.Error
		}
		got = append(got, s)
	}
	require.Equal(t, []string{
		"cb.load applied", "cb.load applied", "cb.set_params applied", "cb.set_params applied", "cb.disable applied", "cb.enable applied",
		"cb.unload applied", "opt.set_params applied", "opt.set_params applied", "loss.set_params applied",
		"cb.disable ignored_freeze", "cb.disable applied",
	}, got)
	require.Equal(t, "external", ledger[0].Source)
	require.Equal(t, map[string]any{"lr": "1e-3"}, ledger[7].Params, "the ledger records the op as it came")
	status, err := rundir.ReadStatus(filepath.Join(dir, rundir.Status))
	require.NoError(t, err)
	require.NotEmpty(t, status.Callbacks)

	// The recipe: ours, and hotcb's export of the same ledger, read as hotcb's replay reads it.
	recipe, err := rundir.ExportRecipe(ledger)
	require.NoError(t, err)
	recipePath := filepath.Join(dir, rundir.Recipe)
	require.NoError(t, rundir.WriteRecipe(recipePath, recipe))
	out := torchpy.Run(t, hotcbRecipeCheck, filepath.Join(dir, rundir.Applied), recipePath)
	var res struct {
		Hotcb []map[string]any `json:"hotcb"`
		Ours  []map[string]any `json:"ours"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(out)), &res), out)
	require.Len(t, res.Hotcb, 11, "every applied cb/opt/loss op")
	require.Equal(t, res.Hotcb, res.Ours)
}

// testdataDir is this package's testdata, absolute (the test above changes directory).
var testdataDir = func() string {
	d, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	return d
}()

// hotcbRecipeCheck does what hotcb's `recipe export` does with a ledger (cli.py, cmd_recipe_export:
// applied cb/opt/loss entries; at from step and event; params, target, init and enabled from
// the payload) and reads our recipe file as hotcb's replay does (recipe.py: at.step as int,
// at.event, module, op, id and the op's fields), printing both, reduced to those fields.
const hotcbRecipeCheck = `
import json, sys
ledger, recipe = sys.argv[1], sys.argv[2]
FIELDS = ("params", "target", "init", "enabled")
hotcb = []
for line in open(ledger, encoding="utf-8"):
    if not line.strip():
        continue
    rec = json.loads(line)
    if rec.get("decision") != "applied" or rec.get("module") not in {"cb", "opt", "loss"}:
        continue
    payload = rec.get("payload") or {}
    e = {"at": {"step": rec.get("step", 0), "event": rec.get("event", "train_step_end")},
         "module": rec.get("module"), "op": rec.get("op"), "id": rec.get("id")}
    for k in FIELDS:
        if k in payload:
            e[k] = payload[k]
    hotcb.append(e)
ours = []
for line in open(recipe, encoding="utf-8"):
    if not line.strip():
        continue
    d = json.loads(line)
    at = d.get("at", {})
    e = {"at": {"step": int(at.get("step", 0)), "event": str(at.get("event", "train_step_end"))},
         "module": str(d.get("module")), "op": str(d.get("op")),
         "id": str(d.get("id")) if d.get("id") is not None else None}
    for k in FIELDS:
        if k in d:
            e[k] = d[k]
    ours.append(e)
print(json.dumps({"hotcb": hotcb, "ours": ours}))
`
