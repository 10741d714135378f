package ops

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseHotcbLines(t *testing.T) {
	// Lines exactly as the Python hotcb CLI writes them.
	op, err := Parse([]byte(`{"module":"cb","op":"load","id":"feat_viz","target":{"kind":"python_file","path":"/tmp/feat_viz.go","symbol":"FeatureVizCallback"},"init":{"every":50},"enabled":true}`))
	require.NoError(t, err)
	require.Equal(t, "cb", op.ModuleName())
	require.Equal(t, KindGoFile, op.Target.Normalized().Kind, "python_file with a .go path is a go_file")
	require.Equal(t, json.Number("50"), op.Init["every"])
	require.True(t, op.IsEnabled())

	op, err = Parse([]byte(`{"op":"set_params","id":"timing","params":{"every":10,"lr":3e-4,"name":"x","on":true,"l":[1,2]}}`))
	require.NoError(t, err)
	require.Equal(t, "cb", op.ModuleName(), "no module means cb")
	require.Equal(t, json.Number("3e-4"), op.Params["lr"])

	op, err = Parse([]byte(`{"module":"opt","op":"set_params","id":"main","params":{"lr":3e-5}}`))
	require.NoError(t, err, "other modules validate their own ops")
	require.Equal(t, "opt.set_params(main)", op.String())

	op, err = Parse([]byte(`  {"module":"core","op":"freeze","mode":"prod","future_field":1}  `))
	require.NoError(t, err, "unknown fields are ignored")
	require.Equal(t, "prod", op.Mode)

	b, err := Marshal(Op{Op: OpEnable, ID: "t"})
	require.NoError(t, err)
	require.Equal(t, `{"op":"enable","id":"t"}`, string(b))
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{``, "empty line"},
		{`[1]`, "not a JSON object"},
		{`{"op":"load"`, "invalid JSON"},
		{`{"op":"enable","id":"a"} {"op":"disable"}`, "trailing data"},
		{`{"id":"a"}`, `missing "op"`},
		{`{"op":"enable"}`, `enable: missing "id"`},
		{`{"op":"explode","id":"a"}`, `unknown cb op "explode"`},
		{`{"op":"load","id":"a"}`, `load a: missing "target"`},
		{`{"op":"load","id":"a","target":{"path":"p","symbol":"s"}}`, "target has no kind"},
		{`{"op":"load","id":"a","target":{"kind":"jar","path":"p","symbol":"s"}}`, `unknown target kind "jar"`},
		{`{"op":"load","id":"a","target":{"kind":"module","symbol":"s"}}`, "target has no path"},
		{`{"op":"load","id":"a","target":{"kind":"module","path":"p"}}`, "target has no symbol"},
		{`{"op":"set_params","id":"a"}`, `set_params a: missing "params"`},
		{`{"op":"set_params","id":"a","params":{}}`, "set_params a: no params given"},
		{`{"op":"set_params","id":"a","params":[1]}`, `field "params": want map[string]interface {}, got JSON array`},
		{`{"op":"load","id":"a","enabled":"yes","target":{"kind":"module","path":"p","symbol":"s"}}`, `field "enabled": want bool, got JSON string`},
		{`{"op":7}`, `field "op": want string, got JSON number`},
		{`{"module":"opt","op":"set_params","params":{"lr":1e999}}`, `params "lr": 1e999 is out of range`},
		{`{"op":"load","id":"a","init":{"k":[1,{"x":-2e400}]},"target":{"kind":"module","path":"p","symbol":"s"}}`, `init "k": [1]: "x": -2e400 is out of range`},
		{"{\"op\":\"enable\",\"id\":\"\xff\"}", ""},
	} {
		_, err := Parse([]byte(c.in))
		if c.want == "" {
			continue // invalid UTF-8 inside a string is accepted by encoding/json (replaced)
		}
		require.ErrorContains(t, err, c.want, c.in)
	}
}

// FuzzParse: no input may panic, and every accepted op re-encodes to a line that parses to an
// equal op.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"module":"cb","op":"load","id":"t","target":{"kind":"module","path":"p","symbol":"S"},"init":{"every":5}}`,
		`{"op":"set_params","id":"t","params":{"a":[1,{"b":null}]}}`,
		`{"module":"opt","op":"set_params","id":"main","params":{"lr":1e-3}}`,
		`{"op":"enable","id":"x"}`, `{`, `"str"`, `{"op":1e400}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := Parse(b)
		if err != nil {
			return
		}
		line, err := Marshal(op)
		require.NoError(t, err)
		again, err := Parse(line)
		require.NoError(t, err, "%s", line)
		require.Equal(t, op.String(), again.String())
	})
}

func TestCheckNumbersRefusesWhatJSONCannotCarry(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), float32(math.Inf(-1)), map[string]any{"a": []any{math.Inf(1)}}} {
		require.ErrorContains(t, CheckNumbers(Op{Op: OpSetParams, ID: "a", Params: map[string]any{"k": v}}), `params "k"`)
	}
	require.NoError(t, CheckNumbers(Op{Op: OpSetParams, ID: "a", Params: map[string]any{"k": 1e308, "n": json.Number("-1.7e308")}}))
}
