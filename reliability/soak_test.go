package reliability

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// soakSteps is the soak's length: 5,000 safe points by default (every `go test`, CI included),
// 100,000 with HOTCB_SOAK=1, or HOTCB_SOAK_STEPS.
func soakSteps() int {
	if s := os.Getenv("HOTCB_SOAK_STEPS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	if os.Getenv("HOTCB_SOAK") == "1" {
		return 100_000
	}
	return 5_000
}

// builtin is a compiled callback the soak loads, unloads and retunes.
type builtin struct {
	id, path, symbol string
	init             string // JSON object
}

var soakBuiltins = []builtin{
	{"timing", "hotcb.modules.cb.callbacks.timing", "TimingCallback", `{"every":500,"out":"timing/steps.jsonl"}`},
	{"heartbeat", "hotcb.modules.cb.callbacks.heartbeat", "HeartbeatCallback", `{"every":1000}`},
	{"grad_stats", "hotcb.modules.cb.callbacks.grad_stats", "GradStatsCallback", `{"every":200}`},
	{"tensor_stats", "hotcb.modules.cb.callbacks.tensor_stats", "TensorStatsCallback", `{"every":200,"paths":["loss"]}`},
	{"jsonl_logger", "hotcb.modules.cb.callbacks.jsonl_logger", "JSONLLoggerCallback", `{"every":100,"paths":["loss"]}`},
	{"system_stats", "hotcb.modules.cb.callbacks.system_stats", "SystemStatsCallback", `{"every":1000}`},
	{"anomaly_guard", "hotcb.modules.cb.callbacks.anomaly_guard", "AnomalyGuardCallback", `{"paths":["loss"],"action":"log"}`},
	{"feat_viz", "hotcb.modules.cb.callbacks.feat_viz", "FeatureVizCallback", `{"every":1000,"layers":["0","2"],"out":"featviz"}`},
}

// soakSource is the go_file callback, version v; a broken version does not compile.
func soakSource(v int, broken bool) string {
	if broken {
		return fmt.Sprintf("package soak\n\n// version %d, half saved\nfunc (c *Counter) Handle(\n", v)
	}
	return fmt.Sprintf(`package soak

import "github.com/hotcb/hotcb/torchenv"

// Counter, version %d.
type Counter struct {
	Name  string `+"`hotcb:\"id\"`"+`
	Every int    `+"`hotcb:\"every\"`"+`
	n     int
}

func (c *Counter) ID() string { return c.Name }

func (c *Counter) Handle(event string, env *torchenv.Env) error {
	c.n++
	if c.Every > 0 && env.Step%%int64(c.Every) == 0 {
		env.Logf("soak-counter v%d step=%%d seen=%%d", env.Step, c.n)
	}
	return nil
}

func (c *Counter) SetParams(p map[string]any) error {
	if v, ok := p["every"].(int64); ok {
		c.Every = int(v)
	}
	return nil
}
`, v, v)
}

// counters counts log lines by kind without keeping them (the soak must not grow its own
// memory).
type counters struct {
	mu          sync.Mutex
	n           map[string]int
	lastCounter string // the go_file callback's last line
}

func (c *counters) line(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if strings.HasPrefix(s, "soak-counter v") {
		c.lastCounter = s
	}
	for _, k := range []string{"soak-counter v", reloadApplied, reloadFailed, "heartbeat"} {
		if strings.Contains(s, k) {
			c.n[k]++
		}
	}
}

// The controller's log lines of hot reloads: loads from the watcher.
const (
	reloadApplied = "applied cb.load(counter) (watch)"
	reloadFailed  = "failed cb.load(counter) (watch)"
)

// commandEntries leaves out the ledger entries of hot reloads, which no command made.
func commandEntries(es []rundir.LedgerEntry) (cmds, reloads []rundir.LedgerEntry) {
	for _, e := range es {
		if e.Source == rundir.SourceWatch {
			reloads = append(reloads, e)
		} else {
			cmds = append(cmds, e)
		}
	}
	return cmds, reloads
}

func (c *counters) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[k]
}

type sample struct {
	step             int
	rssMiB, heapMiB  float64
	goroutines, open int
}

func measure(step int) sample {
	runtime.GC()
	bridge.ReleaseUnreachable()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := sample{step: step, heapMiB: float64(ms.HeapAlloc) / (1 << 20), goroutines: goroutines()}
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseFloat(f[1], 64)
			s.rssMiB = pages * float64(os.Getpagesize()) / (1 << 20)
		}
	}
	if des, err := os.ReadDir("/proc/self/fd"); err == nil {
		s.open = len(des)
	}
	return s
}

// goroutines is runtime.NumGoroutine without the bridge's background runtime.GC, which comes and
// goes with libtorch allocations.
func goroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return runtime.NumGoroutine() - strings.Count(string(buf[:n]), "bridge.notePressure.func1")
}

func (s sample) String() string {
	return fmt.Sprintf("step %6d: RSS %6.1f MiB, Go heap %5.1f MiB, %d goroutines, %d open fds", s.step, s.rssMiB, s.heapMiB, s.goroutines, s.open)
}

// TestSoak trains a small MLP through the kernel for soakSteps() safe points while the
// control plane churns: every 50 steps a command (set_params with random valid values, a
// deliberately invalid one now and then, enable/disable), every 300 steps a compiled callback
// unloaded or loaded again, and the go_file callback rewritten every 1/50 of the run (one in
// five versions does not compile and is then fixed). Commands arrive through the commands
// file and file notifications, as in a real run.
//
// Checked: every command is in the ledger once with the decision expected of it (nothing
// lost); every go_file version that compiles is running at the end; RSS, the Go heap, the
// goroutine count and the open file descriptors are flat between the end of the warm-up (10%)
// and the end with the same callbacks loaded, and with every callback unloaded the goroutines
// are back to where they were before any was loaded.
func TestSoak(t *testing.T) {
	steps := soakSteps()
	defer verifyNoLeaks(t)()
	runtime.LockOSThread() // one OS thread for the loop, as the README recommends
	defer runtime.UnlockOSThread()

	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	src := filepath.Join(dir, "counter.go")
	writeSource := func(v int, broken bool) {
		tmp := src + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(soakSource(v, broken)), 0o600))
		require.NoError(t, os.Rename(tmp, src)) // an editor's save: the reload never sees half a file
	}
	writeSource(1, false)
	logs := &counters{n: map[string]int{}}
	k, err := kernel.New(run, kernel.Options{Controller: controller.Options{PollInterval: 20 * time.Millisecond, Log: logs.line}})
	require.NoError(t, err)
	bridge.ManualSeed(11)
	model := models.MLP(32, 64, 10)
	opt, err := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.01})
	require.NoError(t, err)
	k.RegisterOptimizer("main", opt)
	// No env.Log: callbacks' lines then go to the controller's log, and from there to logs.line.
	env := &torchenv.Env{Model: model, Optimizer: opt, RunDir: run, Phase: "train"}
	x, y := bridge.Randn(bridge.Shape{16, 32}), bridge.RandInt(0, 10, bridge.Shape{16})

	rng := rand.New(rand.NewSource(5))
	sent, wantFailed := 0, 0
	cmd := func(line string) {
		require.NoError(t, rundir.AppendLine(filepath.Join(run, rundir.Commands), []byte(line)))
		sent++
	}
	loaded := map[string]bool{}
	enabled := map[string]bool{}
	load := func(b builtin) {
		cmd(fmt.Sprintf(`{"op":"load","id":%q,"target":{"kind":"module","path":%q,"symbol":%q},"init":%s}`, b.id, b.path, b.symbol, b.init))
		loaded[b.id], enabled[b.id] = true, true
	}
	step := func(i int) {
		env.Step = int64(i)
		loss := bridge.CrossEntropy(model.Forward(x), y)
		opt.ZeroGrad()
		loss.Backward()
		opt.Step()
		env.Loss = loss
		k.Apply(env, torchenv.TrainStepEnd)
	}

	// settle takes safe points (numbered from i: env.Step runs ahead for a moment, the loop's
	// next step sets it back) until every command sent is in the ledger, and returns it.
	settle := func(i int) []rundir.LedgerEntry {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for ; ; i++ {
			es, _ := commandEntries(mustLedger(t, run))
			if len(es) >= sent {
				return es
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d commands sent, %d in the ledger after 30 s", sent, len(es))
			}
			step(i)
			time.Sleep(2 * time.Millisecond)
		}
	}

	k.Apply(env) // the kernel's own goroutines are up
	before := measure(0)
	for _, b := range soakBuiltins {
		load(b)
	}
	cmd(`{"op":"load","id":"counter","target":{"kind":"go_file","path":"` + src + `","symbol":"Counter"},"init":{"every":500}}`)

	warm := steps / 10
	rewriteEvery := max(steps/50, 100)
	version, lastGood := 1, 1
	var start sample
	var trail []sample
	wantLoaded := map[string]bool{}
	t0 := time.Now()
	for i := 0; i < steps; i++ {
		step(i)
		switch {
		case i == warm:
			// Measure once what was sent is applied (and record the set, to end with the same).
			settle(i + 1)
			start = measure(i)
			for id := range loaded {
				wantLoaded[id] = loaded[id]
			}
		case i > warm && i%(steps/10) == 0:
			trail = append(trail, measure(i))
		}
		if i > 0 && i%300 == 0 && i < steps-500 {
			b := soakBuiltins[rng.Intn(len(soakBuiltins))]
			if loaded[b.id] {
				cmd(fmt.Sprintf(`{"op":"unload","id":%q}`, b.id))
				loaded[b.id] = false
			} else {
				load(b)
			}
		}
		if i > 0 && i%50 == 0 {
			ids := make([]string, 0, len(soakBuiltins))
			for _, b := range soakBuiltins {
				if loaded[b.id] {
					ids = append(ids, b.id)
				}
			}
			if len(ids) == 0 {
				continue
			}
			id := ids[rng.Intn(len(ids))]
			switch r := rng.Intn(10); {
			case r == 0: // invalid: every must be >= 1; the callback keeps its values
				cmd(fmt.Sprintf(`{"op":"set_params","id":%q,"params":{"every":0}}`, id))
				wantFailed++
			case r == 1 && enabled[id]:
				cmd(fmt.Sprintf(`{"op":"disable","id":%q}`, id))
				enabled[id] = false
			case r == 2 && !enabled[id]:
				cmd(fmt.Sprintf(`{"op":"enable","id":%q}`, id))
				enabled[id] = true
			default:
				cmd(fmt.Sprintf(`{"op":"set_params","id":%q,"params":{"every":%d}}`, id, 100+rng.Intn(900)))
			}
		}
		if i > 0 && i%rewriteEvery == 0 && i < steps-500 {
			version++
			broken := version%5 == 0
			writeSource(version, broken)
			if !broken {
				lastGood = version
			}
		}
		if i == steps-500 {
			// Back to the warm-up's set of callbacks, enabled, for the end measurement.
			for _, b := range soakBuiltins {
				switch {
				case wantLoaded[b.id] && !loaded[b.id]:
					load(b)
				case !wantLoaded[b.id] && loaded[b.id]:
					cmd(fmt.Sprintf(`{"op":"unload","id":%q}`, b.id))
					loaded[b.id] = false
				case loaded[b.id] && !enabled[b.id]:
					cmd(fmt.Sprintf(`{"op":"enable","id":%q}`, b.id))
					enabled[b.id] = true
				}
			}
			if lastGood != version { // leave a version that compiles
				version++
				writeSource(version, false)
				lastGood = version
			}
		}
	}
	elapsed := time.Since(t0)
	// Everything sent has been applied once the ledger has an entry per command.
	ledger := settle(steps)
	end := measure(steps)
	churned := sent

	failed := 0
	for _, e := range ledger {
		if e.Decision == rundir.DecisionFailed {
			failed++
		}
	}
	require.Equal(t, sent, len(ledger), "one ledger entry per command: nothing lost, nothing doubled")
	require.Equal(t, wantFailed, failed, "only the invalid set_params failed")
	for _, e := range ledger {
		require.NotEqual(t, rundir.SourceReplay, e.Source)
	}
	st := k.Controller().Status()
	for _, cs := range st.Callbacks {
		if cs.ID == "counter" {
			require.True(t, cs.Enabled && cs.Loaded)
		}
	}
	require.Greater(t, logs.get(reloadApplied), 0, "the go_file callback was reloaded")
	_, reloads := commandEntries(mustLedger(t, run))
	byDecision := map[string]int{}
	for _, e := range reloads {
		byDecision[e.Decision]++
	}
	require.Equal(t, map[string]int{rundir.DecisionApplied: logs.get(reloadApplied), rundir.DecisionFailed: logs.get(reloadFailed)},
		byDecision, "every reload is in the ledger")
	step(steps + 500 - steps%500) // a step the counter reports at
	logs.mu.Lock()
	last := logs.lastCounter
	logs.mu.Unlock()
	require.True(t, strings.HasPrefix(last, fmt.Sprintf("soak-counter v%d ", lastGood)), "the last version that compiles runs: %s", last)

	// Unload everything: the goroutines go back to what the kernel alone runs.
	for _, b := range soakBuiltins {
		if loaded[b.id] {
			cmd(fmt.Sprintf(`{"op":"unload","id":%q}`, b.id))
		}
	}
	cmd(`{"op":"unload","id":"counter"}`)
	settle(steps)
	bare := measure(steps)
	require.NoError(t, k.Close())

	t.Logf("soak: %d safe points in %v (%.1f µs each, training step included)", steps, elapsed.Round(time.Millisecond), float64(elapsed.Microseconds())/float64(steps))
	t.Logf("commands: %d sent, %d in the ledger, %d failed as intended; go_file versions written %d (last good v%d), reloads applied %d, failed %d",
		churned, len(ledger), failed, version, lastGood, logs.get(reloadApplied), logs.get(reloadFailed))
	t.Logf("before any callback: %v", before)
	t.Logf("after warm-up:       %v", start)
	for _, s := range trail {
		t.Logf("                     %v", s)
	}
	t.Logf("end (same set):      %v", end)
	t.Logf("all unloaded:        %v", bare)

	require.Equal(t, start.goroutines, end.goroutines, "same callbacks, same goroutines")
	require.Equal(t, before.goroutines, bare.goroutines, "unloading everything leaves no goroutine behind")
	require.LessOrEqual(t, end.open, start.open+2, "no file descriptors leak")
	require.Less(t, end.heapMiB-start.heapMiB, 16.0, "the Go heap is flat")
	require.Less(t, end.rssMiB, start.rssMiB*1.25+32, "RSS is flat")
}
