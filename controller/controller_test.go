package controller_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// probe is a test callback that records what happens to it.
type probe struct {
	id     string
	init   map[string]any
	events []string
	params map[string]any
	closed int
	fail   string // "", "error", "panic", "torch"
	every  int
	resume int // OnResume calls
	pause  int // OnPause calls
}

func (p *probe) ID() string { return p.id }
func (p *probe) Handle(ev string, env *torchenv.Env) error {
	p.events = append(p.events, fmt.Sprintf("%s@%d", ev, env.Step))
	switch p.fail {
	case "error":
		return errors.New("boom")
	case "panic":
		panic("kaboom")
	case "torch":
		bridge.Ones(bridge.Shape{2, 3}).MatMul(bridge.Ones(bridge.Shape{4, 5}))
	}
	return nil
}
func (p *probe) SetParams(m map[string]any) error {
	if v, ok := m["every"]; ok {
		n, ok := v.(int64) // an integer from any source (the callback package's convention)
		if !ok {
			return fmt.Errorf("param every: want an int, got %v", v)
		}
		p.every = int(n)
	}
	if v, ok := m["fail"]; ok {
		p.fail, _ = v.(string)
	}
	if p.params == nil {
		p.params = map[string]any{}
	}
	for k, v := range m {
		p.params[k] = v
	}
	return nil
}
func (p *probe) Close() error { p.closed++; return nil }
func (p *probe) OnResume()    { p.resume++ }
func (p *probe) OnPause()     { p.pause++ }

// fixture is a controller over a temp run dir with a registry holding the probe factory.
type fixture struct {
	t     *testing.T
	dir   string
	c     *controller.HotController
	env   *torchenv.Env
	made  map[string][]*probe
	lines []string
}

func newFixture(t *testing.T, opts controller.Options) *fixture {
	f := &fixture{t: t, dir: t.TempDir(), made: map[string][]*probe{}}
	reg := callback.NewRegistry()
	reg.Register("test/probe", "Probe", func(id string, init map[string]any) (callback.HotCallback, error) {
		if init["bad"] != nil {
			return nil, errors.New("bad init")
		}
		p := &probe{id: id, init: init}
		f.made[id] = append(f.made[id], p)
		return p, nil
	})
	opts.Registry = reg
	opts.PollEveryStep = true
	if opts.CommandsPath == "" {
		opts.CommandsPath = filepath.Join(f.dir, "hotcb.commands.jsonl")
	}
	if opts.StatusPath == "" {
		opts.StatusPath = filepath.Join(f.dir, "hotcb.status.json")
	}
	opts.LogPath = filepath.Join(f.dir, "hotcb.log")
	opts.Log = func(s string) { f.lines = append(f.lines, s) }
	c, err := controller.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	f.c = c
	f.env = &torchenv.Env{}
	return f
}

func (f *fixture) step(events ...string) {
	if len(events) == 0 {
		events = []string{torchenv.TrainStepEnd}
	}
	f.c.Apply(f.env, events...)
	f.env.Step++
}

func (f *fixture) append(lines ...string) {
	fh, err := os.OpenFile(filepath.Join(f.dir, "hotcb.commands.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	require.NoError(f.t, err)
	for _, l := range lines {
		_, err = fh.WriteString(l)
		require.NoError(f.t, err)
	}
	require.NoError(f.t, fh.Close())
}

func (f *fixture) probe(id string) *probe {
	ps := f.made[id]
	require.NotEmpty(f.t, ps, "callback %s was never built", id)
	return ps[len(ps)-1]
}

func (f *fixture) decisions() []string {
	var out []string
	for _, r := range f.c.LastResults() {
		s := string(r.Decision)
		if r.Err != nil {
			s += ": " + r.Err.Error()
		}
		out = append(out, s)
	}
	return out
}

const loadProbe = `{"op":"load","id":"p","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"init":{"k":1}}` + "\n"

func TestOpsAndTheirOrders(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		want  []string // decisions of the ops, in order
		check func(t *testing.T, f *fixture)
	}{
		{"load then dispatch", []string{loadProbe}, []string{"applied"}, func(t *testing.T, f *fixture) {
			f.step()
			require.Equal(t, []string{"train_step_end@0", "train_step_end@1"}, f.probe("p").events)
			require.Equal(t, map[string]any{"k": jsonNum("1")}, f.probe("p").init)
		}},
		{"set_params before load is applied at load", []string{
			`{"op":"set_params","id":"p","params":{"fail":"none"}}` + "\n", loadProbe,
		}, []string{"applied", "applied"}, func(t *testing.T, f *fixture) {
			require.Equal(t, "none", f.probe("p").params["fail"])
		}},
		{"load twice is a no-op", []string{loadProbe, loadProbe}, []string{"applied", "skipped_noop"}, func(t *testing.T, f *fixture) {
			require.Len(t, f.made["p"], 1)
		}},
		{"load with new init replaces and closes the old instance", []string{loadProbe,
			`{"op":"load","id":"p","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"init":{"k":2}}` + "\n",
		}, []string{"applied", "applied"}, func(t *testing.T, f *fixture) {
			require.Len(t, f.made["p"], 2)
			require.Equal(t, 1, f.made["p"][0].closed)
		}},
		{"disable stops dispatch, enable resumes", []string{loadProbe, `{"op":"disable","id":"p"}` + "\n"},
			[]string{"applied", "applied"}, func(t *testing.T, f *fixture) {
				f.step()
				require.Empty(t, f.probe("p").events)
				f.append(`{"op":"enable","id":"p"}` + "\n")
				f.step()
				require.Equal(t, []string{"train_step_end@2"}, f.probe("p").events)
			}},
		{"disable twice: second is a no-op", []string{loadProbe, `{"op":"disable","id":"p"}` + "\n", `{"op":"disable","id":"p"}` + "\n"},
			[]string{"applied", "applied", "skipped_noop"}, nil},
		{"unload then enable fails clearly", []string{loadProbe, `{"op":"unload","id":"p"}` + "\n", `{"op":"enable","id":"p"}` + "\n"},
			[]string{"applied", "applied", `failed: callback "p" was unloaded; load it again`}, func(t *testing.T, f *fixture) {
				require.Equal(t, 1, f.probe("p").closed)
				f.step()
				require.Empty(t, f.probe("p").events, "loaded and unloaded in one poll: never called")
			}},
		{"disable of an unknown id", []string{`{"op":"disable","id":"ghost"}` + "\n"},
			[]string{`failed: unknown callback id "ghost" (known: none)`}, nil},
		{"load loaded=false", []string{`{"op":"load","id":"p","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"enabled":false}` + "\n"},
			[]string{"applied"}, func(t *testing.T, f *fixture) {
				f.step()
				require.Empty(t, f.probe("p").events)
			}},
		{"unknown symbol names what exists", []string{`{"op":"load","id":"p","target":{"kind":"module","path":"test/probe","symbol":"Nope"}}` + "\n"},
			[]string{`failed: load p from module:test/probe#Nope: no symbol "Nope" registered under "test/probe" (it has: Probe)`}, nil},
		{"factory error", []string{`{"op":"load","id":"p","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"init":{"bad":true}}` + "\n"},
			[]string{"failed: load p from module:test/probe#Probe: test/probe#Probe: bad init"}, nil},
		{"a .py file cannot run in Go", []string{`{"module":"cb","op":"load","id":"v","target":{"kind":"python_file","path":"/tmp/v.py","symbol":"V"}}` + "\n"},
			[]string{"failed: load v from python_file:/tmp/v.py#V: cannot load /tmp/v.py: Python callbacks cannot run in a Go process; write the callback in Go (a .go file) or use a compiled one"}, nil},
		{"bad set_params keeps the callback", []string{loadProbe, `{"op":"set_params","id":"p","params":{"every":2.5}}` + "\n"},
			[]string{"applied", "failed: set_params p: param every: want an int, got 2.5"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, controller.Options{})
			f.append(c.lines...)
			f.step()
			require.Equal(t, c.want, f.decisions())
			if c.check != nil {
				c.check(t, f)
			}
		})
	}
}

func jsonNum(s string) any {
	op, _ := ops.Parse([]byte(`{"op":"x","module":"y","params":{"v":` + s + `}}`))
	return op.Params["v"]
}

func TestPartialAndBadLines(t *testing.T) {
	f := newFixture(t, controller.Options{})
	full := loadProbe
	f.append(full[:20]) // a line still being written
	f.step()
	require.Empty(t, f.c.LastResults())
	require.Empty(t, f.made)
	f.append(full[20:] +
		"not json\n" +
		`{"op":"frobnicate","id":"p"}` + "\n" +
		`{"op":"enable"}` + "\n" +
		`{"op":"set_params","id":"p","params":"every=3"}` + "\n" +
		"\n" +
		`{"op":"disable","id":"p"}` + "\n")
	f.step()
	require.Equal(t, []string{"applied", "applied"}, f.decisions(), "the good lines around bad ones are applied")
	log := strings.Join(f.lines, "\n")
	require.Contains(t, log, "line 2 skipped: not a JSON object")
	require.Contains(t, log, `line 3 skipped: unknown cb op "frobnicate"`)
	require.Contains(t, log, `line 4 skipped: enable: missing "id"`)
	require.Contains(t, log, `line 5 skipped: field "params": want map[string]interface {}, got JSON string`)
	f.step()
	st := f.c.Status()
	require.NotNil(t, st)
	require.Equal(t, 4, st.BadLines)
}

func TestTruncatedReplacedRemovedAndDirectory(t *testing.T) {
	f := newFixture(t, controller.Options{})
	path := filepath.Join(f.dir, "hotcb.commands.jsonl")
	f.append(loadProbe)
	f.step()
	// truncate and write a shorter file: read from the start again
	require.NoError(t, os.WriteFile(path, []byte(`{"op":"disable","id":"p"}`+"\n"), 0o600))
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions())
	require.Contains(t, strings.Join(f.lines, "\n"), "was truncated")
	// replace by another file (rename over it)
	tmp := filepath.Join(f.dir, "new.jsonl")
	require.NoError(t, os.WriteFile(tmp, []byte(`{"op":"enable","id":"p"}`+"\n"), 0o600))
	require.NoError(t, os.Rename(tmp, path))
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions())
	require.Contains(t, strings.Join(f.lines, "\n"), "was replaced")
	// removed: training goes on; it comes back
	require.NoError(t, os.Remove(path))
	f.step()
	require.Contains(t, strings.Join(f.lines, "\n"), "was removed")
	f.append(`{"op":"disable","id":"p"}` + "\n")
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions())
	// a directory in its place
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.Mkdir(path, 0o700))
	f.step()
	require.Contains(t, strings.Join(f.lines, "\n"), "is a directory")
	n := len(f.probe("p").events)
	f.step()
	require.Equal(t, n, len(f.probe("p").events), "p stays disabled; nothing crashed")
}

func TestVeryLongLineIsSkipped(t *testing.T) {
	f := newFixture(t, controller.Options{})
	f.append(`{"op":"set_params","id":"p","params":{"x":"` + strings.Repeat("a", 2<<20) + `"}}` + "\n" + loadProbe)
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions())
	require.Contains(t, strings.Join(f.lines, "\n"), "is longer than 1048576 bytes; skipped")
}

func TestFailingCallbacksAreIsolatedAndAutoDisabled(t *testing.T) {
	for _, mode := range []string{"error", "panic", "torch"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, controller.Options{})
			f.append(loadProbe, `{"op":"load","id":"q","target":{"kind":"module","path":"test/probe","symbol":"Probe"}}`+"\n")
			f.step()
			f.append(`{"op":"set_params","id":"p","params":{"fail":"` + mode + `"}}` + "\n")
			f.step() // p fails here and is disabled; q keeps running
			f.step()
			require.Len(t, f.probe("p").events, 2, "p is not called after its failure")
			require.Len(t, f.probe("q").events, 3)
			log := strings.Join(f.lines, "\n")
			require.Contains(t, log, "callback p failed in train_step_end at step 1")
			require.Contains(t, log, "callback p disabled after an error")
			if mode == "panic" {
				require.Contains(t, log, "panic: kaboom")
				require.Contains(t, log, "controller_test.go", "the stack is logged")
			}
			if mode == "torch" {
				require.Contains(t, log, "mat1 and mat2 shapes cannot be multiplied")
			}
			f.append(`{"op":"set_params","id":"p","params":{"fail":""}}`+"\n", `{"op":"enable","id":"p"}`+"\n")
			f.step()
			require.Len(t, f.probe("p").events, 3, "re-enabled by an enable op")
			st := f.c.Status()
			require.Equal(t, int64(1), st.Callbacks[0].Errors)
			require.Equal(t, int64(1), st.Callbacks[0].LastErrorStep)
		})
	}
	t.Run("keep enabled", func(t *testing.T) {
		f := newFixture(t, controller.Options{KeepEnabledOnError: true})
		f.append(loadProbe, `{"op":"set_params","id":"p","params":{"fail":"error"}}`+"\n")
		f.step()
		f.step()
		require.Len(t, f.probe("p").events, 2)
	})
}

func TestYAMLDesiredState(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hotcb.yaml")
	write := func(s string) { require.NoError(t, os.WriteFile(cfg, []byte(s), 0o600)) }
	write(`version: 1
callbacks:
  b:
    target: {kind: module, path: test/probe, symbol: Probe}
    params: {every: 5}
  a:
    enabled: false
    target: {kind: module, path: test/probe, symbol: Probe}
    init: {k: 1}
`)
	f := newFixture(t, controller.Options{ConfigPath: cfg, CommandsPath: filepath.Join(dir, "cmds.jsonl")})
	f.step()
	require.Equal(t, []string{"applied", "applied", "applied"}, f.decisions())
	require.Equal(t, 5, f.probe("b").every)
	require.Len(t, f.probe("b").events, 1)
	require.Empty(t, f.probe("a").events)
	st := f.c.Status()
	require.Equal(t, "b", st.Callbacks[0].ID, "file order is load order")

	// unchanged file: nothing re-applied; a garbage file keeps the state and says why
	f.step()
	require.Empty(t, f.decisions())
	write("callbacks: [this is: not valid")
	f.step()
	require.Empty(t, f.decisions())
	require.Contains(t, strings.Join(f.lines, "\n"), "is invalid, keeping the previous configuration")
	require.Len(t, f.probe("b").events, 3)
	write(`callbacks:
  b:
    target: {kind: module, path: test/probe, symbol: Probe}
    enabeld: true
`)
	f.step()
	require.Contains(t, strings.Join(f.lines, "\n"), `callback b (line 4): unknown key "enabeld"`)
	// fixed: a is enabled now, b's params change
	write(`version: 1
callbacks:
  b:
    target: {kind: module, path: test/probe, symbol: Probe}
    params: {every: 7}
  a:
    enabled: true
    target: {kind: module, path: test/probe, symbol: Probe}
    init: {k: 1}
`)
	f.step()
	require.Equal(t, []string{"skipped_noop", "applied", "applied"}, f.decisions())
	require.Equal(t, 7, f.probe("b").every)
	require.Len(t, f.made["a"], 1, "a was not rebuilt")
	require.NotEmpty(t, f.probe("a").events)
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"version: 2\n", `unsupported version "2"`},
		{"- a\n- b\n", "the top level must be a mapping"},
		{"callbacks: 5\n", "callbacks must be a mapping"},
		{"callbacks:\n  x: {}\n", "callback x (line 2): missing target"},
		{"callbacks:\n  x: {target: {kind: rust, path: a, symbol: b}}\n", `callback x: unknown target kind "rust"`},
		{"callbacks:\n  x: {target: {kind: module, symbol: b}}\n", "callback x: target has no path"},
		{"callbacks:\n  x: {enabled: maybe, target: {kind: module, path: a, symbol: b}}\n", "callback x:"},
		{"callbacks:\n  x: 3\n", "callback x (line 2): the spec must be a mapping"},
		{"callbacks:\n  x: {target: {kind: module, path: a, symbol: b}}\n  y: {target: {kind: module, path: a, symbol: b}}\n  x: {enabled: false, target: {kind: module, path: a, symbol: c}}\n",
			"callback x is defined twice (lines 2 and 4)"},
		{"callbacks:\n  x: {target: {kind: module, path: a, symbol: b}, params: {lr: .inf}}\n", `callback x (line 2): params "lr": +Inf cannot be recorded`},
		{"callbacks:\n  x: {target: {kind: module, path: a, symbol: b}, init: {k: [1, -.inf]}}\n", `callback x (line 2): init "k": [1]: -Inf`},
	} {
		_, err := controller.ParseConfig([]byte(c.in))
		require.ErrorContains(t, err, c.want, c.in)
	}
	specs, err := controller.ParseConfig([]byte("cb:\n  callbacks:\n    t: {target: {kind: module, path: a, symbol: b}}\n"))
	require.NoError(t, err, "the kernel's layout (cb: callbacks:) is read too")
	require.Len(t, specs, 1)
	specs, err = controller.ParseConfig(nil)
	require.NoError(t, err)
	require.Empty(t, specs)
}

// A top-level key hotcb.yaml does not have is an error naming it, its line and the valid keys:
// a misspelt `callbaks:` used to mean "no callbacks". hotcb's own sections (core, opt, loss,
// tune) are accepted and said to be left alone.
func TestConfigTopLevelKeys(t *testing.T) {
	spec := "    r: {target: {kind: module, path: a, symbol: b}}\n"
	_, err := controller.ParseConfig([]byte("version: 1\ncallbaks:\n" + spec))
	require.EqualError(t, err, `line 2: unknown top-level key "callbaks" (valid: version, callbacks, cb, core, opt, loss, tune)`)
	_, err = controller.ParseConfig([]byte("cb:\n  callbaks:\n" + spec))
	require.EqualError(t, err, `line 2: unknown key "callbaks" under cb (valid: callbacks)`)
	_, err = controller.ParseConfig([]byte("cb: 3\n"))
	require.ErrorContains(t, err, "line 1: cb must be a mapping")

	cfg, err := controller.ReadConfig([]byte("version: 1\ncore:\n  freeze_mode: prod\nopt:\n  params: {lr: 0.1}\nloss: {}\ntune: {enabled: false}\ncb:\n  callbacks:\n" + spec))
	require.NoError(t, err)
	require.Len(t, cfg.Callbacks, 1)
	require.Len(t, cfg.NotApplied, 4)
	require.Contains(t, cfg.NotApplied[0], "section core (line 2) is not applied")
	require.Contains(t, cfg.NotApplied[1], "section opt (line 4) is not applied: change the optimizer with `hotcb opt set_params`")
}

// Under the controller, the misspelt file keeps the previous configuration and says why, once.
func TestMisspeltConfigKeyIsReported(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hotcb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("callbacks:\n  p: {target: {kind: module, path: test/probe, symbol: Probe}}\n"), 0o600))
	f := newFixture(t, controller.Options{ConfigPath: cfg})
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions())
	require.NoError(t, os.WriteFile(cfg, []byte("callbaks:\n  p: {target: {kind: module, path: test/probe, symbol: Probe}}\n"), 0o600))
	f.step()
	f.step()
	log := strings.Join(f.lines, "\n")
	require.Equal(t, 1, strings.Count(log, `line 1: unknown top-level key "callbaks"`), log)
	require.Len(t, f.probe("p").events, 3, "p keeps running")
	require.Contains(t, f.c.Status().ControlError, "callbaks")
}

func TestStatusFile(t *testing.T) {
	f := newFixture(t, controller.Options{TimingSample: 1})
	f.append(loadProbe, `{"op":"set_params","id":"p","params":{"every":3}}`+"\n", `{"op":"set_params","id":"later","params":{"x":1}}`+"\n")
	for i := 0; i < 5; i++ {
		f.step(torchenv.ForwardEnd, torchenv.TrainStepEnd)
	}
	require.NoError(t, f.c.Close())
	st, err := rundir.ReadStatus(filepath.Join(f.dir, "hotcb.status.json"))
	require.NoError(t, err)
	require.Equal(t, int64(5), st.Step, "the final status is taken from the env at Close")
	require.Equal(t, os.Getpid(), st.PID)
	require.Len(t, st.Callbacks, 2)
	p := st.Callbacks[0]
	require.Equal(t, "p", p.ID)
	require.True(t, p.Enabled && p.Loaded)
	require.Equal(t, "test/probe", p.Target.Path)
	require.Equal(t, int64(10), p.Calls)
	require.Greater(t, p.MeanMicros, 0.0)
	require.GreaterOrEqual(t, p.MaxMicros, p.MeanMicros)
	require.Equal(t, float64(3), p.Params["every"])
	require.Equal(t, "later", st.Callbacks[1].ID)
	require.Equal(t, float64(1), st.Callbacks[1].PendingParams["x"])
	info, err := os.Stat(filepath.Join(f.dir, "hotcb.status.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	require.Equal(t, 1, f.probe("p").closed, "Close closes callbacks")
}

func TestConcurrentSubmit(t *testing.T) {
	f := newFixture(t, controller.Options{})
	require.NoError(t, f.c.Submit(ops.Op{Op: ops.OpLoad, ID: "p", Target: &ops.CallbackTarget{Kind: "module", Path: "test/probe", Symbol: "Probe"}}))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				require.NoError(t, f.c.Submit(ops.Op{Op: ops.OpSetParams, ID: "p", Params: map[string]any{fmt.Sprint("g", g): i}}))
				_ = f.c.Status()
			}
		}(g)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			f.step()
		}
	}
	f.step()
	for g := 0; g < 8; g++ {
		require.Equal(t, int64(49), f.probe("p").params[fmt.Sprint("g", g)], "the last value of each writer wins")
	}
	require.ErrorContains(t, f.c.Submit(ops.Op{Op: "enable"}), `missing "id"`)
	require.ErrorContains(t, f.c.Submit(ops.Op{Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{}}), "only applies cb ops")
}

func TestNotificationDrivenPolling(t *testing.T) {
	dir := t.TempDir()
	reg := callback.NewRegistry()
	var p *probe
	reg.Register("test/probe", "Probe", func(id string, _ map[string]any) (callback.HotCallback, error) {
		p = &probe{id: id}
		return p, nil
	})
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	c, err := controller.New(controller.Options{CommandsPath: cmds, Registry: reg, PollInterval: time.Hour})
	require.NoError(t, err)
	defer c.Close()
	env := &torchenv.Env{}
	c.Apply(env)
	require.NoError(t, os.WriteFile(cmds, []byte(loadProbe), 0o600))
	deadline := time.Now().Add(5 * time.Second)
	for p == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		c.Apply(env, "tick")
	}
	require.NotNil(t, p, "the inotify event made the controller read the new line")
}

func TestNilEnvLogGoesToTheControllerLog(t *testing.T) {
	f := newFixture(t, controller.Options{})
	f.append(loadProbe)
	env := &torchenv.Env{}
	f.c.Apply(env, torchenv.TrainStepEnd)
	require.NotNil(t, env.Log)
	n := len(f.lines)
	env.Logf("from a callback")
	require.Equal(t, "from a callback", f.lines[n], "callback lines reach the controller's log")
	f.c.Apply(env, torchenv.TrainStepEnd)
	b, err := os.ReadFile(filepath.Join(f.dir, "hotcb.log"))
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(string(b), "from a callback"), "written once, not echoed")
	require.Equal(t, 1, strings.Count(string(b), "applied cb.load(p)"))
}

func TestEchoTakesCallbackLinesAndPauseIsTold(t *testing.T) {
	var echoed []string
	f := newFixture(t, controller.Options{Echo: func(s string) { echoed = append(echoed, s) }})
	f.append(loadProbe)
	env := &torchenv.Env{}
	f.c.Apply(env, torchenv.TrainStepEnd)
	n := len(f.lines)
	env.Logf("from a callback")
	require.Equal(t, []string{"from a callback"}, echoed)
	require.Len(t, f.lines, n, "Log has the control plane's lines only when Echo is set")
	b, err := os.ReadFile(filepath.Join(f.dir, "hotcb.log"))
	require.NoError(t, err)
	require.Contains(t, string(b), "from a callback")

	p := f.probe("p")
	f.append(`{"op":"disable","id":"p"}`+"\n", `{"op":"enable","id":"p"}`+"\n")
	f.c.Apply(env, torchenv.TrainStepEnd)
	require.Equal(t, 1, p.pause, "disabled: told")
	require.Equal(t, 1, p.resume, "enabled again: told before its next Handle")
	f.append(`{"op":"enable","id":"p"}` + "\n")
	f.c.Apply(env, torchenv.TrainStepEnd)
	require.Equal(t, 1, p.resume, "already enabled: no resume")
	f.append(`{"op":"set_params","id":"p","params":{"fail":"error"}}` + "\n")
	f.c.Apply(env, torchenv.TrainStepEnd) // fails, disabled
	f.append(`{"op":"set_params","id":"p","params":{"fail":""}}`+"\n", `{"op":"enable","id":"p"}`+"\n")
	f.c.Apply(env, torchenv.TrainStepEnd)
	require.Equal(t, 2, p.pause, "an error disabled it: told")
	require.Equal(t, 2, p.resume, "enabled after an error disabled it")

	f.append(`{"op":"load","id":"q","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"enabled":false}` + "\n")
	f.c.Apply(env, torchenv.TrainStepEnd)
	require.Equal(t, 1, f.probe("q").pause, "loaded off: told")
}
