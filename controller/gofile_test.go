package controller_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

func feature(version string) string {
	return `package feat

import "github.com/hotcb/hotcb/torchenv"

type FeatureViz struct {
	Name  string ` + "`hotcb:\"id\"`" + `
	Every int    ` + "`hotcb:\"every\"`" + `
}

func (f *FeatureViz) ID() string { return f.Name }

func (f *FeatureViz) Handle(event string, env *torchenv.Env) error {
	if env.Step%int64(f.Every) == 0 {
		env.Logf("` + version + ` %s step=%d every=%d", f.Name, env.Step, f.Every)
	}
	return nil
}

func (f *FeatureViz) SetParams(p map[string]any) error {
	if v, ok := p["every"]; ok {
		f.Every = int(v.(float64))
	}
	return nil
}
`
}

func TestGoFileLoadReloadAndCapture(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "feat_viz.go")
	require.NoError(t, os.WriteFile(src, []byte(feature("v1")), 0o600))
	var lines []string
	var reloads []controller.Result
	c, err := controller.New(controller.Options{PollEveryStep: true, RunDir: dir,
		SourcesDir: filepath.Join(dir, "hotcb.sources"), Log: func(string) {},
		OnReload: func(_ *torchenv.Env, r controller.Result) { reloads = append(reloads, r) }})
	require.NoError(t, err)
	defer c.Close()
	env := &torchenv.Env{Log: func(s string) { lines = append(lines, s) }}
	step := func() { c.Apply(env, torchenv.TrainStepEnd); env.Step++ }

	// hotcb's CLI labels every --file python_file
	load := ops.Op{Module: "cb", Op: "load", ID: "feat_viz", Target: &ops.CallbackTarget{Kind: "python_file", Path: src, Symbol: "FeatureViz"},
		Init: map[string]any{"every": 2}}
	require.NoError(t, c.Submit(load))
	step()
	res := c.LastResults()
	require.Len(t, res, 1)
	require.Equal(t, controller.Applied, res[0].Decision, "%v", res[0].Err)
	require.NotNil(t, res[0].Capture)
	captured, err := os.ReadFile(res[0].Capture.CapturedPath)
	require.NoError(t, err)
	require.Equal(t, feature("v1"), string(captured))
	step()
	step()
	require.Contains(t, lines, "v1 feat_viz step=2 every=2")

	require.NoError(t, c.Submit(ops.Op{Op: "set_params", ID: "feat_viz", Params: map[string]any{"every": 1.0}}))
	step()
	// edit the file: the new version gets the last params and replaces the old one
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, os.WriteFile(src, []byte(feature("v2")), 0o600))
	step()
	res = c.LastResults()
	require.Len(t, res, 1)
	// a load of the same id, target and init, from the watcher, with the new version's capture
	require.Equal(t, ops.OpLoad, res[0].Op.Op)
	require.Equal(t, "watch", res[0].Source)
	require.Equal(t, map[string]any{"every": int64(2)}, res[0].Op.Init, "the init as loaded (normalized)")
	require.Equal(t, src, res[0].Op.Target.Path)
	require.Equal(t, true, *res[0].Op.Enabled)
	require.Equal(t, controller.Applied, res[0].Decision)
	require.Equal(t, sha256Hex(feature("v2")), res[0].Capture.SHA256)
	captured, err = os.ReadFile(res[0].Capture.CapturedPath)
	require.NoError(t, err)
	require.Equal(t, feature("v2"), string(captured))
	require.Equal(t, res, reloads, "OnReload is told")
	step()
	require.Contains(t, lines, fmt.Sprintf("v2 feat_viz step=%d every=1", env.Step-1), "new behaviour with the re-applied params")

	// a broken version: the old one keeps running, the failure is reported
	require.NoError(t, os.WriteFile(src, []byte("package feat\nfunc (\n"), 0o600))
	step()
	res = c.LastResults()
	require.Len(t, res, 1)
	require.Equal(t, controller.Failed, res[0].Decision)
	require.ErrorContains(t, res[0].Err, "the previous version keeps running: sha256 "+sha256Hex(feature("v2")))
	require.Equal(t, &ops.SourceCapture{SHA256: sha256Hex("package feat\nfunc (\n")}, res[0].Capture,
		"the failed version's sha256; nothing is captured")
	require.Len(t, reloads, 2)
	require.Equal(t, controller.Failed, reloads[1].Decision)
	n := len(lines)
	step()
	require.Greater(t, len(lines), n, "v2 still runs")
	require.True(t, strings.HasPrefix(lines[len(lines)-1], "v2 "))
	step()
	require.Empty(t, c.LastResults(), "the broken version is not retried until the file changes")
	st := c.Status()
	require.Contains(t, st.Callbacks[0].LastError, "reload:")

	// replay from the capture after the original is deleted
	require.NoError(t, os.Remove(src))
	rel, err := filepath.Rel(dir, captureFor(t, dir))
	require.NoError(t, err)
	replay := load
	replay.ID = "replayed"
	replay.SourceCapture = &ops.SourceCapture{SHA256: strings.TrimSuffix(filepath.Base(rel), ".go"), CapturedPath: rel}
	require.NoError(t, c.Submit(replay))
	step()
	require.Equal(t, controller.Applied, c.LastResults()[0].Decision, "%v", c.LastResults()[0].Err)
	step()
	require.Contains(t, strings.Join(lines, "\n"), "replayed step=")
	bad := replay
	bad.ID = "tampered"
	bad.SourceCapture = &ops.SourceCapture{SHA256: "00ff", CapturedPath: rel}
	require.NoError(t, c.Submit(bad))
	step()
	require.ErrorContains(t, c.LastResults()[0].Err, `sha256 "00ff" is not 64 lowercase hex digits`)
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// captureFor returns the captured v1 source in dir/hotcb.sources.
func captureFor(t *testing.T, dir string) string {
	entries, err := os.ReadDir(filepath.Join(dir, "hotcb.sources"))
	require.NoError(t, err)
	for _, e := range entries {
		p := filepath.Join(dir, "hotcb.sources", e.Name())
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), `"v1 `) {
			return p
		}
	}
	t.Fatal("no capture of v1")
	return ""
}

func TestRestrictedImportsAndBudget(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "slow.go")
	require.NoError(t, os.WriteFile(src, []byte(`package slow

import (
	"os/exec"
	"time"

	"github.com/hotcb/hotcb/torchenv"
)

var _ = exec.Command

type Slow struct{}

func (s *Slow) ID() string { return "slow" }
func (s *Slow) Handle(event string, env *torchenv.Env) error {
	time.Sleep(3 * time.Millisecond)
	return nil
}
func (s *Slow) SetParams(p map[string]any) error { return nil }
`), 0o600))
	op := ops.Op{Op: "load", ID: "slow", Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "Slow"}}
	c, err := controller.New(controller.Options{PollEveryStep: true})
	require.NoError(t, err)
	defer c.Close()
	env := &torchenv.Env{}
	require.NoError(t, c.Submit(op))
	c.Apply(env)
	require.ErrorContains(t, c.LastResults()[0].Err, `import "os/exec" is not allowed`)

	var log []string
	c2, err := controller.New(controller.Options{PollEveryStep: true, AllowFullStdlib: true,
		CallBudget: time.Millisecond, BudgetStrikes: 3, Log: func(s string) { log = append(log, s) }})
	require.NoError(t, err)
	defer c2.Close()
	require.NoError(t, c2.Submit(op))
	c2.Apply(env, "tick")
	require.Equal(t, controller.Applied, c2.LastResults()[0].Decision, "allowed with the option")
	for i := 0; i < 4; i++ {
		c2.Apply(env, "tick")
	}
	all := strings.Join(log, "\n")
	require.Contains(t, all, "over its budget of 1ms (3 in a row)")
	require.Contains(t, all, "callback slow disabled after 3 calls over budget")
	st := c2.Status()
	require.False(t, st.Callbacks[0].Enabled)
	require.Equal(t, int64(3), st.Callbacks[0].Calls)
}

const nilMapSrc = `package nm

import "github.com/hotcb/hotcb/torchenv"

type N struct {
	counts map[string]int
}

func (n *N) ID() string { return "n" }

func (n *N) bump(key string) {
	n.counts[key]++ // line 12
}

func (n *N) Handle(event string, env *torchenv.Env) error {
	n.bump(event)
	return nil
}

func (n *N) SetParams(p map[string]any) error {
	var xs []int
	_ = xs[len(p)] // line 22
	return nil
}
`

// A go_file callback that panics — a write to a nil map in a helper — is disabled, and the log,
// the status' last_error and OnErrorDisabled name the file and line, not only the interpreter's
// frames; a panicking SetParams fails the op with its line.
func TestGoFilePanicNamesTheLine(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "nilmap.go")
	require.NoError(t, os.WriteFile(src, []byte(nilMapSrc), 0o600))
	var log []string
	var disabled []string
	c, err := controller.New(controller.Options{PollEveryStep: true, Log: func(s string) { log = append(log, s) },
		OnErrorDisabled: func(_ *torchenv.Env, id, reason string) { disabled = append(disabled, id+": "+reason) }})
	require.NoError(t, err)
	defer c.Close()
	env := &torchenv.Env{Step: 4}
	require.NoError(t, c.Submit(ops.Op{Op: "load", ID: "n", Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "N"}}))
	c.Apply(env, torchenv.TrainStepEnd)
	require.Equal(t, controller.Applied, c.LastResults()[0].Decision, "%v", c.LastResults()[0].Err)
	c.Apply(env, torchenv.TrainStepEnd)

	at := src + ":12 in (*N).bump"
	all := strings.Join(log, "\n")
	require.Contains(t, all, "callback n failed in train_step_end at step 4: panic at "+at+": assignment to entry in nil map")
	require.Contains(t, all, "\tat "+at+"\n\tat "+src+":16 in (*N).Handle\n", "the file's frames, innermost first")
	require.Contains(t, all, "callback n disabled after an error")
	require.Equal(t, []string{"n: disabled after an error in train_step_end at step 4: panic at " + at + ": assignment to entry in nil map"}, disabled)
	c.RequestStatus()
	c.Apply(env)
	st := c.Status()
	require.Contains(t, st.Callbacks[0].LastError, "nilmap.go:12")
	require.False(t, st.Callbacks[0].Enabled)

	require.NoError(t, c.Submit(ops.Op{Op: "set_params", ID: "n", Params: map[string]any{"a": 1}}))
	c.Apply(env)
	require.ErrorContains(t, c.LastResults()[0].Err, "panic at "+src+":22 in (*N).SetParams: ")
}
