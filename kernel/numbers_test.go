package kernel_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

// hotcbLine is the line of testdata/hotcb-python/cli-commands.jsonl (what hotcb's Python CLI
// appended to hotcb.commands.jsonl) that contains sub.
func hotcbLine(t *testing.T, sub string) string {
	t.Helper()
	f, err := os.Open(filepath.Join(testdataDir, "hotcb-python", "cli-commands.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			return sc.Text()
		}
	}
	require.Failf(t, "no such line", "%s", sub)
	return ""
}

// hotcb's CLI writes `opt set_params lr=1e-3` as the string "1e-3": the optimizer reads it as
// 0.001. Text that is no number fails, naming the key; a group index may be text too.
func TestOptSetParamsFromHotcbsCLI(t *testing.T) {
	r := newRun(t, t.TempDir())
	defer r.k.Close()
	line := hotcbLine(t, `"lr": "1e-3"`)
	require.Equal(t, `{"module": "opt", "op": "set_params", "id": "main", "params": {"lr": "1e-3"}}`, line)
	r.cmd(line)
	r.step()
	require.Equal(t, 0.001, r.opt.LR(0))

	r.cmd(hotcbLine(t, `"group": 0`)) // {"lr": 0.001, "weight_decay": 0.01, "group": 0}
	r.step()
	wd, err := r.opt.Get(0, "weight_decay")
	require.NoError(t, err)
	require.Equal(t, 0.01, wd)

	r.cmd(`{"module":"opt","op":"set_params","id":"main","params":{"lr":"0.5","group":"0"}}`,
		`{"module":"opt","op":"set_params","id":"main","params":{"lr":"abc"}}`)
	r.step()
	require.Equal(t, 0.5, r.opt.LR(0))
	s := summary(r.ledger())
	require.Equal(t, []string{
		"0 opt.set_params(main) external applied",
		"1 opt.set_params(main) external applied",
		"2 opt.set_params(main) external applied",
		`2 opt.set_params(main) external failed: opt set_params main: optim: hyper-parameter "lr": want a number, got "abc"`,
	}, s)
}

// kinds records the Go types of what a callback receives, as "key=type" (nested too).
type kinds struct {
	id  string
	log *[]string
}

func (c *kinds) ID() string                         { return c.id }
func (c *kinds) Handle(string, *torchenv.Env) error { return nil }
func (c *kinds) SetParams(p map[string]any) error {
	*c.log = append(*c.log, "params "+typesOf(p))
	return nil
}

func typesOf(m map[string]any) string { return strings.Join(typeList("", m), " ") }

func startKinds(t *testing.T, dir string) (*process, *[]string) {
	var log []string
	p := &process{t: t, dir: dir, env: &torchenv.Env{}}
	reg := callback.NewRegistry()
	reg.Register("test/kinds", "K", func(id string, init map[string]any) (callback.HotCallback, error) {
		log = append(log, "init "+typesOf(init))
		return &kinds{id: id, log: &log}, nil
	})
	opts := kernel.Options{}
	opts.Controller.Registry, opts.Controller.PollEveryStep, opts.Controller.AllowAnyOwner = reg, true, true
	k, err := kernel.New(dir, opts)
	require.NoError(t, err)
	p.k = k
	return p, &log
}

func typeList(prefix string, m map[string]any) []string {
	var out []string
	for _, k := range sortedKeys(m) {
		switch v := m[k].(type) {
		case map[string]any:
			out = append(out, typeList(prefix+k+".", v)...)
		case []any:
			for i, e := range v {
				out = append(out, fmt.Sprintf("%s%s.%d=%T", prefix, k, i, e))
			}
		default:
			out = append(out, fmt.Sprintf("%s%s=%T", prefix, k, v))
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// A callback gets the same Go types from a command line, the YAML, the API, and after a restart
// (from the ledger): integers int64, other numbers float64 (2.0 too).
func TestCallbacksGetTheSameTypesFromEverySource(t *testing.T) {
	const want = "every=int64 l.0=int64 l.1=float64 lr=float64 name=string scale=float64 sub.n=int64"
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hotcb.yaml"), []byte(`version: 1
callbacks:
  y:
    target: {kind: module, path: test/kinds, symbol: K}
    init: {every: 50, scale: 2.0, lr: 0.001, name: "1e-3", l: [1, 0.5], sub: {n: 3}}
    params: {every: 50, scale: 2.0, lr: 0.001, name: "1e-3", l: [1, 0.5], sub: {n: 3}}
`), 0o600))
	p, log := startKinds(t, dir)
	const vals = `{"every":50,"scale":2.0,"lr":0.001,"name":"1e-3","l":[1,0.5],"sub":{"n":3}}`
	appendCmd(t, dir, `{"op":"load","id":"c","target":{"kind":"module","path":"test/kinds","symbol":"K"},"init":`+vals+`}`,
		`{"op":"set_params","id":"c","params":`+vals+`}`)
	goVals := map[string]any{"every": int32(50), "scale": float32(2), "lr": 0.001, "name": "1e-3", "l": []any{uint(1), 0.5},
		"sub": map[string]any{"n": int8(3)}}
	require.NoError(t, p.k.Submit(ops.Op{Op: ops.OpLoad, ID: "a", Target: &ops.CallbackTarget{Kind: "module", Path: "test/kinds", Symbol: "K"},
		Init: goVals}))
	require.NoError(t, p.k.Submit(ops.Op{Op: ops.OpSetParams, ID: "a", Params: goVals}))
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"init " + want, "params " + want, "init " + want, "params " + want, "init " + want, "params " + want}, *log,
		"YAML, command line, API")

	p, log = startKinds(t, dir)
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"init " + want, "params " + want, "init " + want, "params " + want, "init " + want, "params " + want}, *log,
		"restored from the ledger, the three the same")
}
