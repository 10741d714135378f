package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// leakOptions are the goroutines goleak may find that no test leaked:
//   - bridge.notePressure.func1 is the bridge's background runtime.GC, started when libtorch
//     allocations pass a threshold; it ends on its own once the collection is done.
var leakOptions = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/hotcb/hotcb/bridge.notePressure.func1"),
}

// verifyNoLeaks fails the test if goroutines started during it are still running at its end
// (those running before it are ignored: other tests' helpers are not this test's leaks).
func verifyNoLeaks(t *testing.T) func() {
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, leakOptions...)
	return func() { goleak.VerifyNone(t, opts...) }
}

// seqCB records the "n" of every set_params it receives, in order. The training goroutine calls
// it; the test goroutine reads it under mu.
type seqCB struct {
	id      string
	mu      sync.Mutex
	got     []int64
	strs    []string
	handled atomic.Int64
}

func (s *seqCB) ID() string { return s.id }

func (s *seqCB) Handle(string, *torchenv.Env) error { s.handled.Add(1); return nil }

func (s *seqCB) SetParams(m map[string]any) error {
	v, ok := m["n"]
	if !ok {
		return nil
	}
	n, ok := v.(int64) // integers reach callbacks as int64 from every source
	if !ok {
		return fmt.Errorf("n: %T", v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, n)
	if str, ok := m["s"].(string); ok {
		s.strs = append(s.strs, str)
	}
	return nil
}

func (s *seqCB) snapshot() ([]int64, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int64(nil), s.got...), append([]string(nil), s.strs...)
}

// chunk is one write to the commands file, then a pause.
type chunk struct {
	data  []byte
	pause time.Duration
}

// hostileStream is n valid set_params lines (n = 0..n-1, in order) with faults around them:
// garbage, torn JSON, raw invalid UTF-8, NUL bytes, unknown ops, blank lines, CRLF endings,
// lines written in pieces with pauses, and one 10 MB line written in three pieces with the
// next valid line glued to its end. It returns the writes and how many bad lines they hold.
func hostileStream(n int) (writes []chunk, bad int) {
	valid := func(i int) string { return fmt.Sprintf(`{"op":"set_params","id":"seq","params":{"n":%d}}`, i) }
	add := func(s string) { writes = append(writes, chunk{data: []byte(s)}) }
	for i := 0; i < n; i++ {
		if i == n/2 {
			huge := `{"op":"set_params","id":"seq","params":{"blob":"` + strings.Repeat("x", 10<<20) + `"}}`
			third := len(huge) / 3
			writes = append(writes, chunk{[]byte(huge[:third]), 5 * time.Millisecond},
				chunk{[]byte(huge[third : 2*third]), 5 * time.Millisecond},
				chunk{[]byte(huge[2*third:] + "\n" + valid(i) + "\n"), 0})
			bad++
			continue
		}
		switch i % 8 {
		case 1:
			add("not json at all\n" + valid(i) + "\n")
			bad++
		case 2:
			add(`{"op":"set_params","id":"seq","params":{"n":` + "\n" + valid(i) + "\n") // a torn line, ended by the next writer
			bad++
		case 3:
			add("\xff\xfe\xfd\x80 binary\n" + valid(i) + "\n")
			bad++
		case 4: // invalid UTF-8 inside a JSON string: a valid command (encoding/json substitutes U+FFFD)
			add(fmt.Sprintf(`{"op":"set_params","id":"seq","params":{"n":%d,"s":"caf`+"\xe9"+`"}}`+"\n", i))
		case 5: // written in pieces: the loop sees a partial line and must wait for the rest
			l := valid(i) + "\n"
			writes = append(writes, chunk{[]byte(l[:7]), 2 * time.Millisecond}, chunk{[]byte(l[7:20]), 2 * time.Millisecond}, chunk{[]byte(l[20:]), 0})
		case 6:
			add("\x00\x00{}\n" + `{"op":"frobnicate","id":"seq"}` + "\n" + valid(i) + "\n")
			bad += 2
		case 7:
			add("\n  \n" + valid(i) + "\r\n")
		default:
			add(valid(i) + "\n")
		}
	}
	return writes, bad
}

// applier is a controller or a kernel.
type applier interface {
	Apply(env *torchenv.Env, events ...string)
}

// trainingLoop calls Apply on its own goroutine, with a little libtorch work per step, until
// stopped.
type trainingLoop struct {
	once  sync.Once
	steps atomic.Int64
	stop  chan struct{}
	done  chan struct{}
	env   *torchenv.Env
}

func startLoop(a applier, env *torchenv.Env) *trainingLoop {
	l := &trainingLoop{stop: make(chan struct{}), done: make(chan struct{}), env: env}
	go func() {
		defer close(l.done)
		w := bridge.Randn(bridge.Shape{8, 8})
		for {
			select {
			case <-l.stop:
				return
			default:
			}
			env.Loss = w.MatMul(w).Sum()
			a.Apply(env, torchenv.TrainStepEnd)
			env.Step++
			l.steps.Add(1)
		}
	}()
	return l
}

// halt stops the loop and waits for it; a second call does nothing.
func (l *trainingLoop) halt() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !waitUntil(d, cond) {
		t.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// waitUntil polls cond until it holds (true) or d has passed (false).
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

type syncLog struct {
	mu    sync.Mutex
	lines []string
}

func (s *syncLog) add(l string) {
	s.mu.Lock()
	s.lines = append(s.lines, l)
	s.mu.Unlock()
}

func (s *syncLog) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// TestHostileCommandStreamWhileTraining appends valid commands mixed with every kind of bad
// input from the test goroutine while a training loop applies them on its own goroutine —
// through the file-notification path a real run uses (no PollEveryStep). Every valid command
// is applied exactly once and in order, every bad line is skipped and counted (and, under the
// kernel, recorded as ignored), and the loop keeps stepping throughout.
func TestHostileCommandStreamWhileTraining(t *testing.T) {
	const n = 240
	for _, via := range []string{"controller", "kernel"} {
		t.Run(via, func(t *testing.T) {
			defer verifyNoLeaks(t)()
			dir := t.TempDir()
			cmds := filepath.Join(dir, rundir.Commands)
			rec := &seqCB{id: "seq"}
			reg := callback.NewRegistry()
			reg.Register("test/seq", "Seq", func(id string, _ map[string]any) (callback.HotCallback, error) { return rec, nil })
			log := &syncLog{}
			copts := controller.Options{Registry: reg, PollInterval: 50 * time.Millisecond, Log: log.add}
			var a applier
			var closeIt func() error
			var status func() *rundir.RunStatus
			if via == "controller" {
				copts.CommandsPath, copts.StatusPath, copts.LogPath = cmds, filepath.Join(dir, rundir.Status), filepath.Join(dir, rundir.Log)
				c, err := controller.New(copts)
				require.NoError(t, err)
				a, closeIt, status = c, c.Close, c.Status
			} else {
				k, err := kernel.New(dir, kernel.Options{Controller: copts})
				require.NoError(t, err)
				a, closeIt, status = k, k.Close, k.Controller().Status
			}
			closed := false
			defer func() {
				if !closed { // a failed check: still stop everything, so goleak reports only real leaks
					closeIt()
				}
			}()
			require.NoError(t, rundir.AppendLine(cmds, []byte(`{"op":"load","id":"seq","target":{"kind":"module","path":"test/seq","symbol":"Seq"}}`)))
			loop := startLoop(a, &torchenv.Env{RunDir: dir})
			defer loop.halt()

			writes, bad := hostileStream(n)
			f, err := os.OpenFile(cmds, os.O_WRONLY|os.O_APPEND, 0o600)
			require.NoError(t, err)
			t0 := time.Now()
			for _, w := range writes {
				_, err := f.Write(w.data)
				require.NoError(t, err)
				time.Sleep(w.pause)
			}
			require.NoError(t, f.Close())
			// (If some are lost, this waits out its deadline and the checks below say which.)
			waitUntil(20*time.Second, func() bool { got, _ := rec.snapshot(); return len(got) >= n })
			applied := time.Since(t0)
			at := loop.steps.Load()
			waitFor(t, 10*time.Second, "the loop to keep stepping", func() bool { return loop.steps.Load() > at+100 })
			loop.halt()

			got, strs := rec.snapshot()
			want := make([]int64, n)
			seen := map[int64]bool{}
			for _, g := range got {
				seen[g] = true
			}
			var lost []int64
			for i := range want {
				want[i] = int64(i)
				if !seen[int64(i)] {
					lost = append(lost, int64(i))
				}
			}
			require.Empty(t, lost, "valid commands lost (of %d)", n)
			require.Equal(t, want, got, "every valid command applied once, in order")
			for _, s := range strs {
				require.Equal(t, "caf\uFFFD", s, "invalid UTF-8 inside a string reaches the callback as U+FFFD")
			}
			require.Greater(t, rec.handled.Load(), int64(1000), "the callback ran at every safe point")
			logText := log.String()
			reported := strings.Count(logText, " skipped")
			require.LessOrEqual(t, reported, 10, "the first ten bad lines in ten seconds are reported, the rest counted")
			require.GreaterOrEqual(t, reported, 10)

			closed = true
			require.NoError(t, closeIt())
			require.Equal(t, bad, status().BadLines, "every bad line is counted once, under the kernel too")
			if via == "kernel" {
				es, torn, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
				require.NoError(t, err)
				require.Empty(t, torn)
				var applied []rundir.LedgerEntry
				ignored := 0
				for _, e := range es {
					switch e.Decision {
					case rundir.DecisionApplied:
						applied = append(applied, e)
					case rundir.DecisionIgnored: // a bad line, or a summary of a poll's many
						require.NotNil(t, e.Notes, "the reason is recorded")
						if c, ok := e.Payload["count"].(int64); ok { // integers read back as int64
							ignored += int(c)
						} else {
							ignored++
						}
					default:
						t.Fatalf("unexpected ledger entry %+v", e)
					}
				}
				require.Len(t, applied, n+1, "the load and each valid set_params are applied")
				for i, e := range applied[1:] {
					require.Equal(t, int64(i), e.Payload["params"].(map[string]any)["n"])
				}
				require.Equal(t, bad, ignored, "every bad line is in the ledger as ignored, once")
			}
			t.Logf("%s: %d valid and %d bad lines (%d writes, one of 10 MB) applied in %v while the loop ran %d steps",
				via, n, bad, len(writes), applied.Round(time.Millisecond), loop.steps.Load())
		})
	}
}
