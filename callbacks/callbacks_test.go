package callbacks

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func TestOutPath(t *testing.T) {
	dir := t.TempDir()
	env := &torchenv.Env{RunDir: dir}
	p, err := OutPath(env, "timing/timing.jsonl", false)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "timing", "timing.jsonl"), p)
	require.DirExists(t, filepath.Join(dir, "timing"))
	_, err = OutPath(env, "../escape.jsonl", false)
	require.ErrorIs(t, err, ErrOutsideRunDir)
	_, err = OutPath(env, "/etc/passwd", false)
	require.ErrorIs(t, err, ErrOutsideRunDir)
	other := t.TempDir()
	p, err = OutPath(env, filepath.Join(other, "x.jsonl"), true)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(other, "x.jsonl"), p)
	inside, err := OutPath(env, filepath.Join(dir, "a", "b.txt"), false)
	require.NoError(t, err, "an absolute path inside the run dir is fine")
	require.Equal(t, filepath.Join(dir, "a", "b.txt"), inside)
}

// guardish is a callback on Base with AnomalyGuard's params and an apply that refuses paths
// naming "bad" and records its calls.
type guardish struct {
	Base[spec.AnomalyGuardParams]
	p     spec.AnomalyGuardParams
	calls []string // "old.every->new.every" per apply
}

func newGuardish(id string, init map[string]any) (*guardish, error) {
	g := &guardish{}
	if err := g.Init(id, &g.p, spec.AnomalyGuard, init, g.apply); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *guardish) apply(old spec.AnomalyGuardParams, m map[string]any) error {
	if slices.Contains(g.p.Paths, "bad") {
		return &params.Error{Key: "paths", Value: m["paths"], Want: "no bad path"}
	}
	g.calls = append(g.calls, fmt.Sprintf("%d->%d", old.Every, g.p.Every))
	return nil
}

func (g *guardish) Handle(string, *torchenv.Env) error { return nil }

func TestBase(t *testing.T) {
	g, err := newGuardish("g", map[string]any{"every": 5})
	require.NoError(t, err)
	require.Equal(t, "g", g.ID())
	want := spec.AnomalyGuard.Defaults()
	want.Every = 5
	require.Equal(t, want, g.Params())
	require.Equal(t, want, g.p, "the callback's own field holds them")
	require.Equal(t, []string{"1->5"}, g.calls, "init goes through apply, from the defaults")

	// Only the keys given change.
	require.NoError(t, g.SetParams(map[string]any{"paths": []any{"loss", "outputs"}}))
	want.Paths = []string{"loss", "outputs"}
	require.Equal(t, want, g.Params())
	require.Equal(t, []string{"1->5", "5->5"}, g.calls)

	// A bad value, or one apply refuses, changes nothing.
	err = g.SetParams(map[string]any{"every": 0, "action": "explode"})
	require.Len(t, params.Errors(err), 2)
	err = g.SetParams(map[string]any{"every": 7, "paths": []any{"bad"}})
	require.ErrorContains(t, err, "no bad path")
	require.Equal(t, want, g.Params())
	require.Equal(t, want, g.p)
	require.Len(t, g.calls, 2)

	// Params is a copy: changing its lists changes nothing.
	p := g.Params()
	p.Paths[0] = "changed"
	require.Equal(t, "loss", g.p.Paths[0])
	// SetParams does not write into the lists it replaces (a copy taken before stays as it was).
	before := g.p.Paths
	require.NoError(t, g.SetParams(map[string]any{"paths": []any{"x", "y"}}))
	require.Equal(t, []string{"loss", "outputs"}, before)

	require.NoError(t, g.Close())
	_, err = newGuardish("h", map[string]any{"evry": 3})
	require.ErrorContains(t, err, `"evry"`)
	_, err = newGuardish("h", map[string]any{"paths": []any{"bad"}})
	require.ErrorContains(t, err, "no bad path")
}

// TestBaseOptions: SetParams decodes with the description's options (heartbeat's message takes
// a number as text).
func TestBaseOptions(t *testing.T) {
	var b Base[spec.HeartbeatParams]
	var p spec.HeartbeatParams
	require.NoError(t, b.Init("hb", &p, spec.Heartbeat, map[string]any{"message": 3}, nil))
	require.Equal(t, spec.HeartbeatParams{Every: 50, Message: "3"}, p)
	var g Base[spec.AnomalyGuardParams]
	var gp spec.AnomalyGuardParams
	require.Error(t, g.Init("g", &gp, spec.AnomalyGuard, map[string]any{"event": 3}, nil), "no such option there")
}

// TestProvide registers a constructor under every name of its description; a constructor's
// error comes back as a nil callback, not a typed nil pointer.
func TestProvide(t *testing.T) {
	prev := callback.Default
	callback.Default = callback.NewRegistry()
	t.Cleanup(func() { callback.Default = prev })
	Provide(spec.AnomalyGuard, newGuardish)
	require.Len(t, callback.Default.Names(), 3)
	for _, tg := range spec.AnomalyGuard.Targets() {
		f, err := callback.Default.Lookup(tg.Path, tg.Symbol)
		require.NoError(t, err, tg)
		cb, err := f("a", map[string]any{"every": 2})
		require.NoError(t, err)
		require.Equal(t, 2, cb.(*guardish).p.Every)
		cb, err = f("a", map[string]any{"every": -2})
		require.Error(t, err)
		require.Nil(t, cb)
	}
}
