package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/ops"
)

func TestAppendLineConcurrentAndTornLines(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "x.jsonl")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				require.NoError(t, AppendJSON(p, map[string]int{"g": g, "i": i}))
			}
		}(g)
	}
	wg.Wait()
	items, bad, err := ReadJSONL[map[string]int](p)
	require.NoError(t, err)
	require.Empty(t, bad)
	require.Len(t, items, 800)
	st, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	dst, err := os.Stat(filepath.Dir(p))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), dst.Mode().Perm())

	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	f.WriteString(`{"g":9,"i"`) // a writer died here
	f.Close()
	require.NoError(t, AppendJSON(p, map[string]int{"g": 10}))
	items, bad, err = ReadJSONL[map[string]int](p)
	require.NoError(t, err)
	require.Len(t, bad, 1, "only the torn line is lost")
	require.Equal(t, 10, items[len(items)-1]["g"])
	require.ErrorContains(t, AppendLine(p, []byte("a\nb")), "may not contain a newline")
}

func TestFreezeState(t *testing.T) {
	dir := t.TempDir()
	f, err := ReadFreeze(filepath.Join(dir, "none.json"))
	require.NoError(t, err)
	require.Equal(t, "off", f.Mode)
	p := filepath.Join(dir, Freeze)
	for _, empty := range []string{"", "\n", "  \n"} { // hotcb's init leaves an empty file
		require.NoError(t, os.WriteFile(p, []byte(empty), 0o600))
		f, err := ReadFreeze(p)
		require.NoError(t, err, "%q", empty)
		require.Equal(t, FreezeOff, f.Mode)
		f, err = ParseFreeze(p, []byte(empty)) // what the intake hands the kernel
		require.NoError(t, err, "%q", empty)
		require.Equal(t, FreezeOff, f.Mode)
	}
	for _, c := range []struct{ in, want string }{
		{`{"mode":"party"}`, `unknown freeze mode "party"`},
		{`{"mode":"prod","policy":"lax"}`, `unknown policy "lax"`},
		{`{"mode":"replay_adjusted"}`, "needs an adjust_path"},
		{`{"mode":`, "unexpected end"},
	} {
		require.NoError(t, os.WriteFile(p, []byte(c.in), 0o600))
		_, err := ReadFreeze(p)
		require.ErrorContains(t, err, c.want)
	}
}

func TestAdjustPatches(t *testing.T) {
	step := func(n int64) *int64 { return &n }
	recipe := []RecipeEntry{
		{At: At{1, "train_step_end"}, Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{"lr": 0.1}},
		{At: At{5, "train_step_end"}, Module: "cb", Op: "enable", ID: "viz"},
		{At: At{7, "train_step_end"}, Module: "loss", Op: "set_params", ID: "main", Params: map[string]any{"w": 2.0, "name": "x"}},
	}
	cases := []struct {
		name  string
		patch Patch
		check func(t *testing.T, out []RecipeEntry)
	}{
		{"replace_params", Patch{Match: &Match{Module: "opt"}, ReplaceParams: map[string]any{"lr": 0.5}}, func(t *testing.T, out []RecipeEntry) {
			require.Equal(t, map[string]any{"lr": 0.5}, out[0].Params)
		}},
		{"shift_step", Patch{Match: &Match{ID: "viz"}, ShiftStep: step(10)}, func(t *testing.T, out []RecipeEntry) {
			require.Equal(t, "loss", out[1].Module, "re-sorted by step")
			require.Equal(t, int64(15), out[2].At.Step)
		}},
		{"drop", Patch{Match: &Match{AtStep: step(5)}, Drop: true}, func(t *testing.T, out []RecipeEntry) {
			require.Len(t, out, 2)
		}},
		{"transform", Patch{Match: &Match{Module: "loss"}, TransformParams: &Transform{Scale: map[string]float64{"w": 1.5}, Add: map[string]float64{"w": 1}}}, func(t *testing.T, out []RecipeEntry) {
			require.Equal(t, 4.0, out[2].Params["w"])
		}},
		{"insert", Patch{Insert: &RecipeEntry{At: At{3, "epoch_end"}, Module: "cb", Op: "disable", ID: "viz"}}, func(t *testing.T, out []RecipeEntry) {
			require.Len(t, out, 4)
			require.Equal(t, "disable", out[1].Op)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := ApplyAdjust(recipe, AdjustFile{Version: 1, Patches: []Patch{c.patch}})
			require.NoError(t, err)
			c.check(t, out)
			require.Equal(t, 0.1, recipe[0].Params["lr"], "the input recipe is not modified")
		})
	}
	_, err := ApplyAdjust(recipe, AdjustFile{Patches: []Patch{{Match: &Match{Module: "loss"}, TransformParams: &Transform{Scale: map[string]float64{"name": 2}}}}})
	require.ErrorContains(t, err, `transform_params scale "name": the param is not a number`)
}

func TestParseAdjustAndTemplate(t *testing.T) {
	a, err := ParseAdjust([]byte(PatchTemplate))
	require.NoError(t, err, "the template is valid")
	require.Len(t, a.Patches, 5)
	for _, c := range []struct{ in, want string }{
		{"version: 3\n", "unsupported adjust version 3"},
		{"patches:\n  - drop: true\n", "patch 1: needs a match"},
		{"patches:\n  - match: {module: cb}\n", "patch 1: no action"},
		{"patches:\n  - match: {module: cb}\n    insert: {module: cb, op: enable, id: x, at: {step: 1, event: e}}\n", "insert stands alone"},
		{"patches:\n  - insert: {module: cb, op: explode, id: x}\n", `patch 1: insert: unknown cb op "explode"`},
		{"patches:\n  - match: {modul: cb}\n    drop: true\n", "field modul not found"},
	} {
		_, err := ParseAdjust([]byte(c.in))
		require.ErrorContains(t, err, c.want, c.in)
	}
}

func TestRecipeRoundTripAndErrors(t *testing.T) {
	dir := t.TempDir()
	id := "r"
	entries := []LedgerEntry{
		{Seq: 2, Step: 5, Event: "train_step_end", Module: "opt", Op: "set_params", ID: &id, Decision: "applied", Payload: map[string]any{"params": map[string]any{"lr": 0.1}}},
		{Seq: 1, Step: 1, Event: "train_step_end", Module: "cb", Op: "load", ID: &id, Decision: "applied",
			Payload: map[string]any{"target": map[string]any{"kind": "module", "path": "p", "symbol": "S"}, "init": map[string]any{"every": 3.0}}},
		{Seq: 3, Step: 6, Module: "cb", Op: "enable", ID: &id, Decision: "failed"},
		{Seq: 4, Step: 6, Module: "core", Op: "freeze", Decision: "applied"},
	}
	recipe, err := ExportRecipe(entries)
	require.NoError(t, err)
	require.Len(t, recipe, 2)
	require.Equal(t, "load", recipe[0].Op, "seq order")
	require.Equal(t, "p", recipe[0].Target.Path)
	p := filepath.Join(dir, Recipe)
	require.NoError(t, WriteRecipe(p, recipe))
	back, err := ReadRecipe(p)
	require.NoError(t, err)
	require.Equal(t, recipe, back)
	require.NoError(t, os.WriteFile(p, []byte(`{"at":{"step":1,"event":"e"},"module":"cb","op":"load","id":"x"}`+"\n"), 0o600))
	_, err = ReadRecipe(p)
	require.ErrorContains(t, err, `entry 1 (cb load): load x: missing "target"`)
	require.NoError(t, os.WriteFile(p, []byte("garbage\n"), 0o600))
	_, err = ReadRecipe(p)
	require.ErrorContains(t, err, "line 1")
}

// FuzzParseAdjust: no input panics; accepted files apply to a recipe without panicking.
func FuzzParseAdjust(f *testing.F) {
	f.Add([]byte(PatchTemplate))
	f.Add([]byte("patches:\n  - match: {at_step: 1}\n    shift_step: -5\n"))
	f.Add([]byte("{\"version\":1,\"patches\":[{\"match\":{\"module\":\"opt\"},\"drop\":true}]}"))
	recipe := []RecipeEntry{{At: At{1, "e"}, Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{"lr": 0.1}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAdjust(b)
		if err != nil {
			return
		}
		_, _ = ApplyAdjust(recipe, a)
	})
}

// FuzzReadRecipe: recipe files never panic the reader.
func FuzzReadRecipe(f *testing.F) {
	f.Add([]byte(`{"at":{"step":1,"event":"e"},"module":"opt","op":"set_params","id":"main","params":{"lr":0.1}}` + "\n"))
	f.Add([]byte(`{"at":{"step":"x"}}`))
	dir := f.TempDir()
	n := 0
	f.Fuzz(func(t *testing.T, b []byte) {
		n++
		p := filepath.Join(dir, fmt.Sprint(n, ".jsonl"))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Skip()
		}
		_, _ = ReadRecipe(p)
		os.Remove(p)
	})
}

// Numbers keep their kind from an applied op to the ledger, the exported recipe and its replay:
// integers come back int64, floats float64 (2.0 too), never json.Number; a numeric string stays a
// string.
func TestNumbersKeepTheirKindThroughLedgerAndRecipe(t *testing.T) {
	dir := t.TempDir()
	id := "viz"
	vals := map[string]any{"every": int64(20), "scale": 2.0, "lr": 0.001, "name": "1e-3", "seed": uint64(1 << 63),
		"l": []any{int64(1), 0.5}, "m": map[string]any{"n": int64(3), "w": 1.0}}
	op := ops.Op{Module: "cb", Op: ops.OpLoad, ID: id, Target: &ops.CallbackTarget{Kind: "module", Path: "p", Symbol: "S"},
		Init: vals, Params: vals}
	ledger := filepath.Join(dir, Applied)
	require.NoError(t, AppendJSON(ledger, LedgerEntry{Seq: 1, Module: "cb", Op: ops.OpLoad, ID: &id, Decision: DecisionApplied,
		Payload: Payload(op)}))
	l, err := ReadLedger(ledger)
	require.NoError(t, err)
	require.Equal(t, vals, l.Entries[0].Payload["init"], "a ledger line reads back normalized")
	back, err := DecodePayload(l.Entries[0])
	require.NoError(t, err)
	require.Equal(t, vals, back.Init, "the ledger gives back what was applied")
	require.Equal(t, vals, back.Params)

	recipe, err := ExportRecipe(l.Entries)
	require.NoError(t, err)
	require.Equal(t, vals, recipe[0].Init)
	p := filepath.Join(dir, Recipe)
	require.NoError(t, WriteRecipe(p, recipe))
	replay, err := ReadRecipe(p)
	require.NoError(t, err)
	require.Equal(t, vals, replay[0].Init, "the replay gives callbacks what the run gave them")
	require.Equal(t, vals, replay[0].Params)

	// A recipe written by hand (or by hotcb) reads the same way.
	require.NoError(t, os.WriteFile(p, []byte(`{"at":{"step":1,"event":"e"},"module":"cb","op":"set_params","id":"x","params":{"every":20,"scale":2.0,"lr":"1e-3"}}`+"\n"), 0o600))
	replay, err = ReadRecipe(p)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"every": int64(20), "scale": 2.0, "lr": "1e-3"}, replay[0].Params)
	require.NoError(t, os.WriteFile(p, []byte(`{"at":{"step":1,"event":"e"},"module":"opt","op":"set_params","id":"x","params":{"lr":1e999}}`+"\n"), 0o600))
	_, err = ReadRecipe(p)
	require.ErrorContains(t, err, `line 1: params "lr": 1e999 is out of range`)
}

// The adjust file's YAML values and the transforms' results are normalized; a transform reads
// the text of a number ("1e-3") as the number.
func TestAdjustNormalizes(t *testing.T) {
	a, err := ParseAdjust([]byte(`version: 1
patches:
  - match: {module: cb, id: viz}
    replace_params: {every: 5, scale: 2.0, sub: {n: 1}}
  - match: {module: opt}
    transform_params: {scale: {lr: 2}}
  - insert: {at: {step: 9, event: e}, module: cb, op: set_params, id: viz, params: {every: 7}}
`))
	require.NoError(t, err)
	recipe := []RecipeEntry{
		{At: At{1, "e"}, Module: "cb", Op: "set_params", ID: "viz", Params: map[string]any{"every": int64(1)}},
		{At: At{2, "e"}, Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{"lr": "1e-3"}},
	}
	out, err := ApplyAdjust(recipe, a)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"every": int64(5), "scale": 2.0, "sub": map[string]any{"n": int64(1)}}, out[0].Params)
	require.Equal(t, map[string]any{"lr": 0.002}, out[1].Params)
	require.Equal(t, map[string]any{"every": int64(7)}, out[2].Params)
}

// A recipe or adjust file that is a FIFO (read at a safe point when a replay starts) is refused
// at once instead of waiting for a writer; through a symbolic link, a regular one is still read.
func TestRecipeAndAdjustNeverBlockOnAFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "recipe.jsonl")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan [2]error, 1)
	go func() {
		_, rerr := ReadRecipe(fifo)
		_, aerr := ReadAdjust(fifo)
		done <- [2]error{rerr, aerr}
	}()
	select {
	case errs := <-done:
		for _, err := range errs {
			require.ErrorContains(t, err, "recipe.jsonl is not a regular file")
		}
	case <-time.After(5 * time.Second):
		for i := 0; i < 2; i++ { // unblock both reads so the test can end
			if f, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
				f.Close()
			}
		}
		t.Fatal("reading a FIFO as the recipe blocked")
	}
	real := filepath.Join(dir, "real.jsonl")
	require.NoError(t, os.WriteFile(real, []byte(`{"at":{"step":1,"event":"e"},"module":"cb","op":"enable","id":"a"}`+"\n"), 0o600))
	link := filepath.Join(dir, "link.jsonl")
	require.NoError(t, os.Symlink(real, link))
	r, err := ReadRecipe(link)
	require.NoError(t, err)
	require.Len(t, r, 1)
}
