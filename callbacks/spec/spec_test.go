package spec

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/hotcb/hotcb/params"
)

// TestDescriptions: every built-in has its names, texts and params, no two share a name, and
// the params' description agrees with package params.
func TestDescriptions(t *testing.T) {
	require.Len(t, All, 8)
	seen := map[string]string{}
	unique := func(kind, name, who string) {
		t.Helper()
		require.NotEmpty(t, name, "%s of %s", kind, who)
		k := kind + ":" + strings.ToLower(name)
		require.Empty(t, seen[k], "%s %q of %s is %s's too", kind, name, who, seen[k])
		seen[k] = who
	}
	for _, b := range All {
		unique("Go name", b.Name, b.Name)
		unique("hotcb name", b.Hotcb, b.Name)
		unique("hotcb symbol", b.HotcbSymbol, b.Name)
		require.NotEmpty(t, b.Package, b.Name)
		require.NotEmpty(t, b.About, b.Name)
		require.NotContains(t, b.About, "\n", b.Name)
		require.NotEmpty(t, b.Doc, b.Name)
		require.Equal(t, []Target{
			{"github.com/hotcb/hotcb/callbacks/" + b.Package, b.Name},
			{"hotcb.modules.cb.callbacks." + b.Hotcb, b.HotcbSymbol},
			{"hotcb.modules.cb.callbacks", b.HotcbSymbol},
		}, b.Targets())

		def := b.defaults()
		ps := b.Params()
		keys := make([]string, len(ps))
		for i, p := range ps {
			keys[i] = p.Key
			require.NotEmpty(t, p.Doc, "%s.%s has no doc comment in params.go", b.Name, p.Field)
			f, ok := reflect.TypeOf(def).FieldByName(p.Field)
			require.True(t, ok)
			require.Equal(t, f.Type.String(), p.Type)
		}
		require.Equal(t, params.Keys(def), keys, "%s: the keys package params decodes", b.Name)
		require.Equal(t, reflect.TypeOf(def).NumField(), len(ps), "%s: every field is a param", b.Name)

		// The defaults pass their own rules and survive a round trip through the encoding.
		zero := reflect.New(reflect.TypeOf(def))
		require.NoError(t, params.Decode(params.Encode(def), zero.Interface(), b.Options...), b.Name)
		require.Equal(t, params.Encode(def), params.Encode(zero.Elem().Interface()), b.Name)

		// The template's init is YAML that decodes into the params.
		var init map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(b.Init), &init), b.Name)
		require.NotEmpty(t, init, b.Name)
		p := reflect.New(reflect.TypeOf(def))
		p.Elem().Set(reflect.ValueOf(def))
		require.NoError(t, params.Decode(init, p.Interface(), b.Options...), "%s init %s", b.Name, b.Init)
	}
}

// TestDefaultsAreFresh: each Defaults call returns lists of its own, so that a callback that
// changes its params cannot change another's defaults.
func TestDefaultsAreFresh(t *testing.T) {
	a := Timing.Defaults()
	a.Events[0] = "changed"
	require.Equal(t, "train_step_start", Timing.Defaults().Events[0])
	g := AnomalyGuard.Defaults()
	g.Paths[0] = "changed"
	require.Equal(t, []string{"loss"}, AnomalyGuard.Defaults().Paths)
}

func TestParams(t *testing.T) {
	ps := AnomalyGuard.Params()
	require.Equal(t, Param{Key: "action", Field: "Action", Type: "string", Rules: "oneof=log|disable|stop", Default: "log",
		Doc: `Action is what an anomaly does: "log" logs it (up to max_reports) and keeps checking, "disable" logs the ` +
			`first and disarms the guard until a set_params, "stop" logs and asks the training loop to stop (env.RequestStop).`},
		ps[4])
	require.Equal(t, []any{"loss"}, ps[1].Default)
	fv := FeatureViz.Params()
	require.Equal(t, "layers", fv[1].Key)
	require.Equal(t, []any{}, fv[1].Default, "a nil list is shown as an empty one")
	require.Equal(t, "", fieldDoc("FeatureVizParams", "NoSuchField"))
}

func TestLookup(t *testing.T) {
	for name, want := range map[string]*Builtin{
		"timing": Timing.Describe(), "Timing": Timing.Describe(), "feat_viz": FeatureViz.Describe(),
		"featviz": FeatureViz.Describe(), "FEATUREVIZ": FeatureViz.Describe(), "system": SystemStats.Describe(),
		"jsonl": JSONLLogger.Describe(), "guard": AnomalyGuard.Describe(), "grad_stats": GradStats.Describe(),
	} {
		b, ok := Lookup(name)
		require.True(t, ok, name)
		require.Same(t, want, b, name)
	}
	for _, name := range []string{"stats", "", "nope", "TimingCallback"} {
		_, ok := Lookup(name)
		require.False(t, ok, "%q: stats holds two built-ins", name)
	}
}

func TestFlow(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{50, "50"}, {int64(-3), "-3"}, {2.0, "2"}, {0.5, "0.5"}, {true, "true"}, {nil, "null"},
		{"timing/timing.jsonl", "timing/timing.jsonl"}, {"auto", "auto"}, {"", `""`}, {"10", `"10"`},
		{"1e3", `"1e3"`}, {"true", `"true"`}, {"No", `"No"`}, {"a: b", `"a: b"`}, {"a,b", `"a,b"`},
		{" x", `" x"`}, {"-x", `"-x"`}, {"#x", `"#x"`}, {`say "hi"`, `"say \"hi\""`},
		{[]any{}, "[]"}, {[]any{"loss", "outputs"}, "[loss, outputs]"}, {[]any{"", 1}, `["", 1]`},
		{map[string]any{"b": 1, "a": []any{"x"}}, "{a: [x], b: 1}"},
	} {
		require.Equal(t, c.want, Flow(c.in), "%#v", c.in)
		if c.in == nil {
			continue
		}
		// What Flow writes, YAML reads back as the same value.
		var back any
		require.NoError(t, yaml.Unmarshal([]byte(c.want), &back), c.want)
		switch v := c.in.(type) {
		case int64:
			require.EqualValues(t, v, back)
		case float64:
			require.EqualValues(t, v, toFloat(back), c.want)
		default:
			require.Equal(t, c.in, normalize(back), c.want)
		}
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	return -1
}

// normalize turns YAML's ints in lists and maps into the ints the test wrote.
func normalize(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = normalize(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = normalize(x[k])
		}
	}
	return v
}
