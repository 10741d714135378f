package loss_test

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/loss"
)

func newLoss() *loss.Loss {
	return loss.New(
		loss.Term{Name: "ce", Weight: 1},
		loss.Term{Name: "distill", Weight: 0.5},
		loss.Term{Name: "depth", Weight: 1},
		loss.Term{Name: "aux_w", Weight: 0.1}, // a name that itself ends in _w
		loss.Term{Name: "smooth", Weight: 0.1, Disabled: true},
	)
}

func TestRouting(t *testing.T) {
	for _, tc := range []struct {
		name    string
		params  map[string]any
		weights map[string]float64 // expected changes
		terms   map[string]bool
	}{
		{"NAME_w strips the suffix", map[string]any{"distill_w": 0.2, "depth_w": 1.5},
			map[string]float64{"distill": 0.2, "depth": 1.5}, nil},
		{"any other key is a weight", map[string]any{"ce": 1.0, "distill": 0.25}, map[string]float64{"ce": 1, "distill": 0.25}, nil},
		{"numbers as text, ints, json.Number", map[string]any{"ce": "0.5", "distill_w": 2, "depth": json.Number("1e-3")},
			map[string]float64{"ce": 0.5, "distill": 2, "depth": 1e-3}, nil},
		{"a term named *_w is found whole", map[string]any{"aux_w": 0.3}, map[string]float64{"aux_w": 0.3}, nil},
		{"a term named *_w by NAME_w too", map[string]any{"aux_w_w": 0.4}, map[string]float64{"aux_w": 0.4}, nil},
		{"terms.NAME", map[string]any{"terms.depth": false, "terms.smooth": true}, nil, map[string]bool{"depth": false, "smooth": true}},
		{"terms.NAME as text", map[string]any{"terms.depth": "false", "terms.smooth": "on"}, nil, map[string]bool{"depth": false, "smooth": true}},
		{"terms object merges", map[string]any{"terms": map[string]any{"depth": false}}, nil, map[string]bool{"depth": false}},
		{"terms object from Go", map[string]any{"terms": map[string]bool{"smooth": true, "ce": true}}, nil, map[string]bool{"smooth": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLoss()
			want := l.State()
			for k, v := range tc.weights {
				want.Weights[k] = v
			}
			for k, v := range tc.terms {
				want.Terms[k] = v
			}
			_, err := l.SetParams(tc.params, 3)
			require.NoError(t, err)
			require.Equal(t, want, l.State())
		})
	}
}

func TestWeightAndToggles(t *testing.T) {
	l := newLoss()
	require.Equal(t, []string{"ce", "distill", "depth", "aux_w", "smooth"}, l.Names())
	require.Equal(t, 0.5, l.Weight("distill", 0))
	require.Equal(t, 0.0, l.Weight("smooth", 0), "declared off")
	require.False(t, l.Active("smooth", 0))
	note, err := l.SetParams(map[string]any{"smooth_w": 0.3}, 1)
	require.NoError(t, err)
	require.Equal(t, "smooth is off: its weight counts once terms.smooth=true", note)
	require.Equal(t, 0.0, l.Weight("smooth", 1))
	_, err = l.SetParams(map[string]any{"terms.smooth": true}, 2)
	require.NoError(t, err)
	require.Equal(t, 0.3, l.Weight("smooth", 2))
	require.True(t, l.Active("smooth", 2))
	_, err = l.SetParams(map[string]any{"terms": map[string]any{"smooth": false, "ce": false}}, 3)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"ce": 0, "distill": 0.5, "depth": 1, "aux_w": 0.1, "smooth": 0}, l.Weights(4))
	require.Equal(t, int64(4), l.LastStep())
	require.Equal(t, 0.3, l.State().Weights["smooth"], "a term off keeps its weight")
	require.PanicsWithValue(t, `loss.Weight: unknown term "kl" (declared: aux_w, ce, depth, distill, smooth)`, func() { l.Weight("kl", 0) })
}

func TestRamps(t *testing.T) {
	l := newLoss()
	l.SetTotalSteps(1000)
	note, err := l.SetParams(map[string]any{"ramps.depth": map[string]any{"type": "linear", "warmup_frac": 0.2, "end": 2.0}}, 100)
	require.NoError(t, err)
	require.Equal(t, "ramp of depth: linear 0 -> 2 over steps 100..300", note)
	require.Equal(t, loss.Ramp{Type: "linear", End: 2, FromStep: 100, WarmupFrac: 0.2}, l.State().Ramps["depth"])
	for step, want := range map[int64]float64{0: 0, 99: 0, 100: 0, 150: 0.5, 200: 1, 299: 1.99, 300: 2, 5000: 2} {
		require.InDelta(t, want, l.Weight("depth", step), 1e-12, "step %d", step)
	}
	// cosine, start given, end defaulting to the weight, steps instead of a fraction
	_, err = l.SetParams(map[string]any{"ramps": map[string]any{"distill": map[string]any{"type": "cosine", "start": "0.1", "warmup_steps": 10, "from_step": 0}}}, 50)
	require.NoError(t, err)
	for step, want := range map[int64]float64{0: 0.1, 5: 0.3, 10: 0.5, 11: 0.5} {
		require.InDelta(t, want, l.Weight("distill", step), 1e-12, "step %d", step)
	}
	// a ramp counts only while the term is on
	_, err = l.SetParams(map[string]any{"terms.depth": false}, 120)
	require.NoError(t, err)
	require.Equal(t, 0.0, l.Weight("depth", 150))
	_, err = l.SetParams(map[string]any{"terms.depth": true}, 121)
	require.NoError(t, err)
	require.InDelta(t, 0.5, l.Weight("depth", 150), 1e-12)

	// setting the weight removes the ramp; in the same op as a ramp, it is the ramp's end
	note, err = l.SetParams(map[string]any{"depth_w": 0.7}, 200)
	require.NoError(t, err)
	require.Equal(t, "ramp of depth removed: its weight was set", note)
	require.Equal(t, 0.7, l.Weight("depth", 200))
	_, err = l.SetParams(map[string]any{"depth_w": 3, "ramps.depth": map[string]any{"warmup_steps": 4}}, 200)
	require.NoError(t, err)
	require.Equal(t, 1.5, l.Weight("depth", 202))
	require.Equal(t, 3.0, l.Weight("depth", 204))

	// removal: "none", null, type none
	for _, v := range []any{"none", nil, map[string]any{"type": "none"}} {
		_, err = l.SetParams(map[string]any{"ramps.depth": map[string]any{"warmup_steps": 4}}, 300)
		require.NoError(t, err)
		require.Equal(t, 0.0, l.Weight("depth", 300))
		note, err = l.SetParams(map[string]any{"ramps.depth": v}, 301)
		require.NoError(t, err)
		require.Equal(t, "ramp of depth removed", note)
		require.Equal(t, 3.0, l.Weight("depth", 301))
	}
}

func TestDeclaredRamp(t *testing.T) {
	l := loss.New(loss.Term{Name: "aux", Weight: 2, Ramp: &loss.Ramp{WarmupFrac: 0.5}})
	require.Equal(t, 2.0, l.Weight("aux", 0), "without the run's length a warmup_frac ramp counts as done")
	l.SetTotalSteps(100)
	require.Equal(t, 0.0, l.Weight("aux", 0))
	require.Equal(t, 1.0, l.Weight("aux", 25))
	require.Equal(t, 2.0, l.Weight("aux", 50))
	require.Equal(t, "linear 0 -> 2 from step 0 over 0.5 of the run", fmt.Sprint(l.State().Ramps["aux"]))
}

func TestSetParamsErrors(t *testing.T) {
	for _, tc := range []struct {
		params map[string]any
		want   string
	}{
		{nil, "no params given"},
		{map[string]any{"aux": 0.5}, `aux: unknown term "aux" (declared: aux_w, ce, depth, distill, smooth)`},
		{map[string]any{"kl_w": 0.5}, `kl_w: unknown term "kl"`},
		{map[string]any{"terms.kl": true}, `terms.kl: unknown term "kl"`},
		{map[string]any{"ramps.kl": map[string]any{"warmup_steps": 1}}, `ramps.kl: unknown term "kl"`},
		{map[string]any{"ce": -1}, "ce: weight must be >= 0, got -1"},
		{map[string]any{"ce": "nan"}, "ce: want a number"},
		{map[string]any{"ce": "inf"}, "ce: weight must be a finite number, got +Inf"},
		{map[string]any{"ce": "high"}, `ce: want a number, got "high"`},
		{map[string]any{"ce": true}, "ce: want a number, got true"},
		{map[string]any{"terms.ce": "maybe"}, `terms.ce: want`},
		{map[string]any{"terms": "ce"}, `terms: want an object of term names, got "ce"`},
		{map[string]any{"ce": 1, "ce_w": 2}, "ce_w: the weight of ce is given twice (ce and ce_w)"},
		{map[string]any{"terms.ce": true, "terms": map[string]any{"ce": false}}, "terms.ce: the term of ce is given twice (terms.ce and terms.ce)"},
		{map[string]any{"ramps.depth": 2.0}, `ramps.depth: want an object such as {"type":"linear","warmup_frac":0.2,"end":2.0}, or "none" to remove the ramp, got 2`},
		{map[string]any{"ramps.depth": `{"type":`}, `ramps.depth: want an object`},
		{map[string]any{"ramps.depth": map[string]any{"type": "step", "warmup_steps": 1}}, `ramps.depth: type "step" is not a ramp type (want linear or cosine)`},
		{map[string]any{"ramps.depth": map[string]any{"warmup": 1}}, `ramps.depth: param "warmup": unknown key`},
		{map[string]any{"ramps.depth": map[string]any{"end": 2}}, "ramps.depth: give warmup_steps or warmup_frac"},
		{map[string]any{"ramps.depth": map[string]any{"warmup_steps": 5, "warmup_frac": 0.1}}, "ramps.depth: give warmup_steps or warmup_frac, not both"},
		{map[string]any{"ramps.depth": map[string]any{"warmup_frac": 0.1}}, "ramps.depth: warmup_frac needs the run's length"},
		{map[string]any{"ramps.depth": map[string]any{"warmup_steps": 5, "end": -2}}, "ramps.depth: end must be >= 0, got -2"},
		{map[string]any{"ramps.depth": map[string]any{"warmup_steps": -5}}, "ramps.depth: warmup_steps must be >= 0, got -5"},
	} {
		t.Run(fmt.Sprint(tc.params), func(t *testing.T) {
			l := newLoss()
			before := l.State()
			_, err := l.SetParams(tc.params, 7)
			require.ErrorContains(t, err, tc.want)
			require.Equal(t, before, l.State(), "all or nothing")
		})
	}
}

func TestSetParamsAllOrNothing(t *testing.T) {
	l := newLoss()
	before := l.State()
	_, err := l.SetParams(map[string]any{"ce": 0.5, "terms.smooth": true, "kl": 1, "depth": "x"}, 1)
	require.EqualError(t, err, `depth: want a number, got "x"; kl: unknown term "kl" (declared: aux_w, ce, depth, distill, smooth)`)
	require.Equal(t, before, l.State())
	// a ramp that fails only once resolved leaves the op's weights unapplied too
	_, err = l.SetParams(map[string]any{"ce": 0.5, "ramps.depth": map[string]any{"end": 1}}, 1)
	require.Error(t, err)
	require.Equal(t, before, l.State())
}

func TestNewPanics(t *testing.T) {
	for _, tc := range []struct {
		terms []loss.Term
		want  string
	}{
		{[]loss.Term{{Weight: 1}}, "loss.New: a term has no name"},
		{[]loss.Term{{Name: "a"}, {Name: "a"}}, `loss.New: term "a" is declared twice`},
		{[]loss.Term{{Name: "a", Weight: -1}}, `loss.New: term "a": weight must be >= 0, got -1 (negate the term itself to maximise it)`},
		{[]loss.Term{{Name: "a", Weight: math.NaN()}}, `loss.New: term "a": weight must be a finite number, got NaN`},
		{[]loss.Term{{Name: "a", Weight: 1, Ramp: &loss.Ramp{Type: "exp", WarmupSteps: 2}}}, `loss.New: term "a": ramp: type "exp" is not a ramp type (want linear or cosine)`},
	} {
		require.PanicsWithValue(t, tc.want, func() { loss.New(tc.terms...) })
	}
}

// num is a fake tensor: a value and the expression that made it.
type num struct {
	v    float64
	expr string
}

func (n num) MulScalar(w float64) num { return num{n.v * w, fmt.Sprintf("%g*%s", w, n.expr)} }
func (n num) Add(o num) num           { return num{n.v + o.v, n.expr + "+" + o.expr} }

func TestCombine(t *testing.T) {
	l := newLoss()
	terms := map[string]num{"ce": {2, "ce"}, "distill": {4, "distill"}, "depth": {1, "depth"}, "aux_w": {10, "aux"}}
	got := loss.Combine(l, 0, terms)
	require.Equal(t, "ce+0.5*distill+depth+0.1*aux", got.expr, "declaration order; weight 1 as is; smooth is off and absent")
	require.InDelta(t, 6.0, got.v, 1e-12)
	_, err := l.SetParams(map[string]any{"distill_w": 0, "terms.depth": false}, 1)
	require.NoError(t, err)
	delete(terms, "distill") // weight 0: may be left out
	require.Equal(t, "ce+0.1*aux", loss.Combine(l, 1, terms).expr)

	_, err = l.SetParams(map[string]any{"terms.smooth": true}, 2)
	require.NoError(t, err)
	require.PanicsWithValue(t, `loss.Combine: term "smooth" has weight 0.1 at step 2 but terms has no value for it`,
		func() { loss.Combine(l, 2, terms) })
	require.PanicsWithValue(t, `loss.Combine: unknown term "kl" (declared: aux_w, ce, depth, distill, smooth)`,
		func() { loss.Combine(l, 2, map[string]num{"kl": {}}) })

	_, err = l.SetParams(map[string]any{"terms": map[string]any{"ce": false, "aux_w": false, "smooth": false}}, 3)
	require.NoError(t, err)
	require.Equal(t, "0*ce", loss.Combine(l, 3, terms).expr, "nothing counts: zero, with a graph")
	require.Panics(t, func() { loss.Combine(l, 3, map[string]num{}) })
}

// TestConcurrent: the control plane changes the Loss while another goroutine reads it (run with
// -race).
func TestConcurrent(t *testing.T) {
	l := newLoss()
	l.SetTotalSteps(100)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := range 200 {
			_, err := l.SetParams(map[string]any{"ce": float64(i % 3), "ramps.depth": map[string]any{"warmup_frac": 0.5}}, int64(i))
			if err != nil {
				panic(err)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := range 200 {
			w := l.Weights(int64(i))
			if w["ce"] < 0 || w["ce"] > 2 || !strings.Contains(fmt.Sprint(l.State()), "depth") {
				panic(fmt.Sprint(w))
			}
			loss.Combine(l, int64(i), map[string]num{"ce": {1, "ce"}, "distill": {1, "d"}, "depth": {1, "p"}, "aux_w": {1, "a"}})
		}
	}()
	wg.Wait()
}

// TestFold: the folded params of a history leave a newly declared Loss as the history left the
// first, whatever step they are applied at.
func TestFold(t *testing.T) {
	declare := func() *loss.Loss {
		l := loss.New(loss.Term{Name: "ce", Weight: 1}, loss.Term{Name: "aux", Weight: 0.5, Ramp: &loss.Ramp{WarmupSteps: 10}},
			loss.Term{Name: "depth", Weight: 2}, loss.Term{Name: "kd", Weight: 0.3, Disabled: true}, loss.Term{Name: "x_w", Weight: 1})
		l.SetTotalSteps(1000)
		return l
	}
	history := []loss.Applied{
		{map[string]any{"ce": "0.8", "terms.kd": true}, 5},
		{map[string]any{"ramps.depth": map[string]any{"type": "cosine", "warmup_frac": 0.1}}, 20},           // from_step 20, end 2
		{map[string]any{"kd_w": 0.4, "ramps": map[string]any{"kd": map[string]any{"warmup_steps": 8}}}, 30}, // end 0.4, from 30
		{map[string]any{"aux_w": 0.25}, 40},                                                                 // removes the declared ramp
		{map[string]any{"ramps.ce": map[string]any{"warmup_steps": 3, "from_step": 7}}, 50},
		{map[string]any{"ramps.ce": "none", "terms": map[string]any{"depth": false}}, 60},
		{map[string]any{"x_w": 0.9}, 61},
		{map[string]any{"ramps.depth": map[string]any{"warmup_steps": 5}}, 70},
		{map[string]any{"depth": 1.5}, 80}, // removes the ramp of step 70
	}
	a := declare()
	for _, h := range history {
		_, err := a.SetParams(h.Params, h.Step)
		require.NoError(t, err)
	}
	folded := loss.Fold(history)
	b := declare()
	_, err := b.SetParams(folded, 500)
	require.NoError(t, err, "%v", folded)
	require.Equal(t, a.State(), b.State(), "folded: %v", folded)
	require.Equal(t, int64(30), b.State().Ramps["kd"].FromStep, "the step its op was applied at")
	require.Equal(t, []string{"kd"}, keys(b.State().Ramps))
	for step := int64(0); step < 200; step += 7 {
		require.Equal(t, a.Weights(step), b.Weights(step))
	}
	// folding the folded params changes nothing
	require.Equal(t, folded, loss.Fold([]loss.Applied{{folded, 900}}))
	require.Nil(t, loss.Fold(nil))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
