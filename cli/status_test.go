package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

func statusFixture(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "status.json"))
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, rundir.Status), string(b))
}

// TestStatusFixture pins the rendering of a status file, including fields a kernel adds.
func TestStatusFixture(t *testing.T) {
	dir := newRunDir(t)
	statusFixture(t, dir)
	out := runAt(t, testNow, "--dir", dir, "status")
	require.NoError(t, out.err)
	require.Equal(t, `step 420, epoch 1, phase train — written 5s ago (2026-11-29 11:59:55) by pid 4242
commands: runs/x/hotcb.commands.jsonl read to byte 1234, 2 bad lines skipped (see hotcb.log)
last control error: runs/x/hotcb.commands.jsonl line 3 skipped: invalid JSON
freeze_mode: prod
kernel_version: k1
ledger_seq: 12
optimizers: {"main":{"lr":0.001}}

ID      ENABLED  LOADED  TARGET                                                   PARAMS               CALLS  MEAN    ERRORS  LAST ERROR
timing  yes      yes     module:hotcb.modules.cb.callbacks.timing#TimingCallback  {"every":10}         420    3.2µs   0       -
guard   no       yes     go_file:/src/guard.go#Guard                              -                    77     1.50ms  1       step 77: guard: NaN in loss; at step 77
later   no       no      -                                                        pending {"every":5}  0      -       0       -
`, out.out)

	// One callback in full.
	one := runAt(t, testNow, "--dir", dir, "status", "timing")
	require.NoError(t, one.err)
	require.Equal(t, `id:         timing
enabled:    yes
loaded:     yes
target:     kind module, path hotcb.modules.cb.callbacks.timing, symbol TimingCallback
init:       {"every":50}
params:     {"every":10}
calls:      420
mean time:  3.2µs
max time:   40.0µs
errors:     0
as of:      step 420, 5s ago
`, one.out)

	// JSON: the file as written, its age and staleness.
	js := runAt(t, testNow, "--dir", dir, "status", "--json")
	require.NoError(t, js.err)
	var got struct {
		Path   string         `json:"path"`
		Age    float64        `json:"age_seconds"`
		Stale  bool           `json:"stale"`
		Status map[string]any `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(js.out), &got))
	require.Equal(t, 5.0, got.Age)
	require.False(t, got.Stale)
	require.Equal(t, "k1", got.Status["kernel_version"])
	require.Equal(t, filepath.Join(dir, rundir.Status), got.Path)
	require.Len(t, got.Status["callbacks"], 3)
}

// TestStatusStale: an old snapshot says the process may have stopped, and whether its pid runs.
func TestStatusStale(t *testing.T) {
	dir := newRunDir(t)
	writeFile(t, filepath.Join(dir, rundir.Status), `{"written_at":"2026-11-29T11:58:00Z","pid":2147483646,"step":9,"callbacks":[]}`)
	out := runAt(t, testNow, "--dir", dir, "status")
	require.NoError(t, out.err)
	require.Contains(t, out.out, "written 2m0s ago")
	require.Contains(t, out.out, "stale: the training process may have stopped (pid 2147483646 is not running)")
	require.Contains(t, out.out, "no callbacks")

	writeFile(t, filepath.Join(dir, rundir.Status), `{"written_at":"2026-11-29T11:58:00Z","pid":`+itoa(os.Getpid())+`,"step":9,"callbacks":[]}`)
	out = runAt(t, testNow, "--dir", dir, "status")
	require.Contains(t, out.out, "still exists: it may be stuck")

	// A custom threshold.
	out = runAt(t, testNow, "--dir", dir, "status", "--stale-after", "5m")
	require.NotContains(t, out.out, "stale")
	js := runAt(t, testNow, "--dir", dir, "status", "--json")
	require.Contains(t, js.out, `"stale": true`)
}

// TestStatusStuck: the watchdog's report is shown first, with what the user can do, instead of
// the staleness warning (the process is alive, its training goroutine is stuck).
func TestStatusStuck(t *testing.T) {
	dir := newRunDir(t)
	writeFile(t, filepath.Join(dir, rundir.Status), `{"written_at":"2026-11-29T11:58:00Z","pid":`+itoa(os.Getpid())+`,"step":9,"callbacks":[],
		"stuck":{"callback":"blk","call":"example.com/cb.(*Blocker).Handle","event":"train_step_end","step":9,"since":"2026-11-29T11:58:30Z","abandonable":false}}`)
	out := runAt(t, testNow, "--dir", dir, "status")
	require.NoError(t, out.err)
	require.Contains(t, out.out, "STUCK: the safe point of step 9 (train_step_end) is stuck in callback blk, in example.com/cb.(*Blocker).Handle, for 1m30s; a compiled callback cannot be abandoned: Ctrl-C or SIGTERM stops the run, then 'hotcb cb unload blk' or 'hotcb train --no-restore'")
	require.NotContains(t, out.out, "stale")
	require.NotContains(t, out.out, `"callback"`, "not listed again as an unknown field")
}

// TestStatusMissing: before any process wrote a status, status says so (and succeeds); the
// freeze state is shown when it is not off; a broken file is an error.
func TestStatusMissing(t *testing.T) {
	dir := newRunDir(t)
	out := runAt(t, testNow, "--dir", dir, "status")
	require.NoError(t, out.err)
	require.Contains(t, out.out, "no status yet: no training process has written "+filepath.Join(dir, rundir.Status))
	js := runAt(t, testNow, "--dir", dir, "status", "--json")
	require.NoError(t, js.err)
	require.JSONEq(t, `{"path":`+quote(filepath.Join(dir, rundir.Status))+`,"status":null}`, js.out)

	mustRun(t, "--dir", dir, "freeze", "--mode", "prod")
	out = runAt(t, testNow, "--dir", dir, "status")
	require.True(t, strings.HasPrefix(out.out, "freeze file: prod\n"), out.out)

	writeFile(t, filepath.Join(dir, rundir.Status), "{not json")
	out = runAt(t, testNow, "--dir", dir, "status")
	require.ErrorContains(t, out.err, "is not a hotcb status file")
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// counter is the test callback: it counts Handle calls and keeps its params.
type counter struct {
	mu     sync.Mutex
	id     string
	Every  int `hotcb:"every"`
	calls  int
	closed bool
}

func (c *counter) ID() string { return c.id }
func (c *counter) Handle(string, *torchenv.Env) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return nil
}
func (c *counter) SetParams(p map[string]any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return params.Decode(p, c)
}
func (c *counter) Close() error { c.closed = true; return nil }

func (c *counter) state() (every, calls int, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Every, c.calls, c.closed
}

// testRegistry registers the counter as testcb#Counter and keeps every instance by id.
func testRegistry() (*callback.Registry, map[string]*counter) {
	made := map[string]*counter{}
	reg := callback.NewRegistry()
	reg.Register("testcb", "Counter", func(id string, init map[string]any) (callback.HotCallback, error) {
		c := &counter{id: id}
		if err := params.Decode(init, c); err != nil {
			return nil, err
		}
		made[id] = c
		return c, nil
	})
	return reg, made
}

const tickSource = `package tick

import "github.com/hotcb/hotcb/torchenv"

// Tick counts its calls.
type Tick struct {
	Name  string ` + "`hotcb:\"id\"`" + `
	Every int    ` + "`hotcb:\"every\"`" + `
	n     int
}

func (t *Tick) ID() string { return t.Name }

func (t *Tick) Handle(event string, env *torchenv.Env) error { t.n++; return nil }

func (t *Tick) SetParams(p map[string]any) error { return nil }
`

// TestControllerObeysCLI: the lines this CLI writes are applied by a controller tailing the
// commands file — load (module and Go file, hotcb's python_file kind), set_params, disable,
// enable, unload — and `status` shows the result from the status file it writes.
func TestControllerObeysCLI(t *testing.T) {
	dir := newRunDir(t)
	src := filepath.Join(t.TempDir(), "tick.go")
	writeFile(t, src, tickSource)
	reg, made := testRegistry()
	ctl, err := controller.New(controller.Options{
		CommandsPath: filepath.Join(dir, rundir.Commands), StatusPath: filepath.Join(dir, rundir.Status),
		PollEveryStep: true, StatusInterval: time.Millisecond, Registry: reg, RunDir: dir,
		SourcesDir: filepath.Join(dir, rundir.Sources)})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: dir}
	step := func() {
		t.Helper()
		env.Step++
		ctl.Apply(env, torchenv.TrainStepEnd)
		for _, r := range ctl.LastResults() {
			require.NotEqual(t, controller.Failed, r.Decision, "%+v", r)
		}
	}
	cli := func(args ...string) { t.Helper(); mustRun(t, append([]string{"--dir", dir}, args...)...) }

	cli("cb", "load", "c1", "--path", "testcb", "--symbol", "Counter", "--init", "every=2")
	step()
	require.Contains(t, made, "c1")
	every, calls, _ := made["c1"].state()
	require.Equal(t, 2, every)
	require.Equal(t, 1, calls)

	cli("cb", "set_params", "c1", "every=7")
	step()
	every, calls, _ = made["c1"].state()
	require.Equal(t, 7, every)
	require.Equal(t, 2, calls)

	cli("disable", "c1")
	step()
	step()
	_, calls, _ = made["c1"].state()
	require.Equal(t, 2, calls, "disabled: not called")

	cli("cb", "enable", "c1")
	step()
	_, calls, _ = made["c1"].state()
	require.Equal(t, 3, calls)

	cli("cb", "load", "c2", "--path", "testcb", "--symbol", "Counter", "--no-enabled")
	cli("cb", "load", "tick", "--file", src, "--symbol", "Tick", "--init", "every=3")
	step()
	step()
	_, calls2, _ := made["c2"].state()
	require.Equal(t, 0, calls2, "loaded disabled")

	cli("cb", "unload", "c1")
	step()
	_, _, closed := made["c1"].state()
	require.True(t, closed)
	require.NoError(t, ctl.Close())

	out := mustRun(t, "--dir", dir, "status")
	require.NotContains(t, out, "stale")
	rows := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 5 {
			rows[f[0]] = f
		}
	}
	require.Equal(t, []string{"c2", "no", "yes", "module:testcb#Counter", "-", "0", "-", "0", "-"}, rows["c2"])
	require.Equal(t, []string{"tick", "yes", "yes"}, rows["tick"][:3])
	require.True(t, strings.HasSuffix(rows["tick"][3], "/tick.go#Tick"), rows["tick"][3])
	require.True(t, strings.HasPrefix(rows["tick"][3], "go_file:"), rows["tick"][3])
	require.Equal(t, []string{"-", "3"}, rows["tick"][4:6])
	require.Equal(t, "no", rows["c1"][1], "unloaded: %v", rows["c1"])
	require.Contains(t, out, "step 8")

	detail := mustRun(t, "--dir", dir, "status", "tick")
	require.Contains(t, detail, "target:     kind go_file, path "+src+", symbol Tick")
	require.Contains(t, detail, `init:       {"every":3}`)
}

// TestUnknownIDNote: enable of an id the process does not have is queued, with a note; ids
// complete from the status.
func TestUnknownIDNote(t *testing.T) {
	dir := newRunDir(t)
	statusFixture(t, dir)
	r := runCLI(t, "--dir", dir, "enable", "timnig")
	require.NoError(t, r.err)
	require.Contains(t, r.errOut, `note: the process has no callback "timnig" (status at step 420)`)
	require.Equal(t, `{"module": "cb", "op": "enable", "id": "timnig"}`+"\n", commandsOf(t, dir))
	r = runCLI(t, "--dir", dir, "cb", "disable", "timing")
	require.NoError(t, r.err)
	require.Empty(t, r.errOut)

	r = runCLI(t, "--dir", dir, "__complete", "cb", "enable", "")
	require.NoError(t, r.err)
	require.Equal(t, "timing\nguard\nlater\n:4\n", r.out)
}

// TestStatusAndLedgerOfRanks: a data-parallel run directory shows every rank.
func TestStatusAndLedgerOfRanks(t *testing.T) {
	dir := newRunDir(t)
	statusFixture(t, dir)
	writeFile(t, filepath.Join(dir, rundir.Applied), `{"seq":1,"wall_time":1,"step":5,"event":"train_step_end","module":"cb","op":"load","id":"r0","source":"external","decision":"applied"}`+"\n")
	for _, r := range []string{"1", "2"} {
		rd := filepath.Join(dir, rundir.RanksDir, r)
		require.NoError(t, os.MkdirAll(rd, 0o700))
		writeFile(t, filepath.Join(rd, rundir.Applied), `{"seq":1,"wall_time":1,"step":5,"event":"train_step_end","module":"cb","op":"load","id":"r`+r+`","source":"external","decision":"applied"}`+"\n")
	}
	st := rundir.RunStatus{WrittenAt: testNow.Add(-2 * time.Second), Step: 421, Extra: map[string]any{"ledger_seq": 7}}
	b, err := json.Marshal(st)
	require.NoError(t, err)
	writeFile(t, filepath.Join(dir, rundir.RanksDir, "1", rundir.Status), string(b))

	out := runAt(t, testNow, "--dir", dir, "status")
	require.NoError(t, out.err)
	require.Contains(t, out.out, "ranks (rank 0 above")
	require.Contains(t, out.out, "  rank 1: step 421, written 2s ago, 0 callbacks, ledger seq 7\n")
	require.Contains(t, out.out, "  rank 2: no status yet\n")

	out = runAt(t, testNow, "--dir", dir, "status", "--json")
	require.NoError(t, out.err)
	var js struct {
		Ranks []struct {
			Rank   int            `json:"rank"`
			Status map[string]any `json:"status"`
		} `json:"ranks"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.out), &js))
	require.Len(t, js.Ranks, 2)
	require.Equal(t, 1, js.Ranks[0].Rank)
	require.Equal(t, float64(421), js.Ranks[0].Status["step"])
	require.Nil(t, js.Ranks[1].Status)

	out = runCLI(t, "--dir", dir, "ledger", "--rank", "2")
	require.NoError(t, out.err)
	require.Contains(t, out.out, "r2")
	require.NotContains(t, out.out, "r0")
	out = runCLI(t, "--dir", dir, "ledger")
	require.Contains(t, out.out, "r0")
	out = runCLI(t, "--dir", dir, "ledger", "--rank", "5")
	require.ErrorContains(t, out.err, "has no rank 5")
	require.Contains(t, out.err.Error()+out.errOut, "ranks with a run directory here: 0, 1, 2")
}
