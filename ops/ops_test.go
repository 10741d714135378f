package ops

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseHotcbLines(t *testing.T) {
	// Lines exactly as the Python hotcb CLI writes them.
	op, err := Parse([]byte(`{"module":"cb","op":"load","id":"feat_viz","target":{"kind":"python_file","path":"/tmp/feat_viz.go","symbol":"FeatureVizCallback"},"init":{"every":50},"enabled":true}`))
	require.NoError(t, err)
	require.Equal(t, "cb", op.ModuleName())
	require.Equal(t, KindGoFile, op.Target.Normalized().Kind, "python_file with a .go path is a go_file")
	require.Equal(t, int64(50), op.Init["every"], "integers are int64")
	require.True(t, op.IsEnabled())

	op, err = Parse([]byte(`{"op":"set_params","id":"timing","params":{"every":10,"lr":3e-4,"name":"x","on":true,"l":[1,2]}}`))
	require.NoError(t, err)
	require.Equal(t, "cb", op.ModuleName(), "no module means cb")
	require.Equal(t, map[string]any{"every": int64(10), "lr": 3e-4, "name": "x", "on": true, "l": []any{int64(1), int64(2)}},
		op.Params, "integers int64, other numbers float64, lists []any")

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

// The lines hotcb's Python CLI appended to hotcb.commands.jsonl (testdata copied from
// /work/shared/hotcb-python/cli-commands.jsonl), as the controller and modules receive them.
func TestParseHotcbCLILines(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "hotcb-cli-commands.jsonl"))
	require.NoError(t, err)
	var got []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		op, err := Parse(line)
		require.NoError(t, err, "%s", line)
		if op.Init != nil {
			got = append(got, op.Init)
		}
		if op.Params != nil {
			got = append(got, op.Params)
		}
	}
	require.Equal(t, []map[string]any{
		{"every": int64(50)},
		{"every": int64(50)},
		{"every": int64(20), "window": int64(100)},
		{"lr": "1e-3"}, // hotcb writes lr=1e-3 as a string: it stays one, and typed consumers read it
		{"lr": 0.001, "weight_decay": 0.01, "group": int64(0)},
		{"ce": 1.0, "aux": 0.5},
	}, got)
}

// A float keeps its kind through a line: 2.0 is written 2.0 (encoding/json alone writes 2, which
// reads back as an integer).
func TestMarshalKeepsFloatsFloats(t *testing.T) {
	op := Op{Module: "loss", Op: OpSetParams, ID: "main", Params: map[string]any{"ce": 1.0, "n": int64(1),
		"ramp": map[string]any{"end": 2.0}}}
	line, err := Marshal(op)
	require.NoError(t, err)
	require.Equal(t, `{"module":"loss","op":"set_params","id":"main","params":{"ce":1.0,"n":1,"ramp":{"end":2.0}}}`, string(line))
	back, err := Parse(line)
	require.NoError(t, err)
	require.Equal(t, op.Params, back.Params)
	b, err := json.Marshal(struct{ Op *Op }{&op})
	require.NoError(t, err)
	require.Contains(t, string(b), `"ce":1.0`, "inside other values too")
}

// Go values given to the API come out in the same form as parsed lines.
func TestNormalize(t *testing.T) {
	in := Op{Op: OpLoad, ID: "a", Init: map[string]any{"every": int32(5), "scale": float32(0.1), "n": uint(3)},
		Params: map[string]any{"window": json.Number("100"), "seed": uint64(math.MaxUint64), "paths": []string{"loss"}}}
	op, err := Normalize(in)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"every": int64(5), "scale": 0.1, "n": int64(3)}, op.Init)
	require.Equal(t, map[string]any{"window": int64(100), "seed": uint64(math.MaxUint64), "paths": []any{"loss"}}, op.Params)
	require.Equal(t, int32(5), in.Init["every"], "the op given is not modified")

	_, err = Normalize(Op{Op: OpSetParams, ID: "a", Params: map[string]any{"lr": math.NaN()}})
	require.EqualError(t, err, `params "lr": NaN cannot be recorded: JSON has no NaN or infinity`)
	_, err = Normalize(Op{Op: OpLoad, ID: "a", Init: map[string]any{"f": func() {}}})
	require.ErrorContains(t, err, `init "f": a func() cannot be a parameter value`)
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
		for _, m := range [][2]map[string]any{{op.Params, again.Params}, {op.Init, again.Init}} {
			if len(m[0])+len(m[1]) > 0 { // an empty map is not written
				require.Equal(t, m[0], m[1], "the same values of the same types")
			}
		}
	})
}

func TestCheckNumbersRefusesWhatJSONCannotCarry(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), float32(math.Inf(-1)), map[string]any{"a": []any{math.Inf(1)}}} {
		require.ErrorContains(t, CheckNumbers(Op{Op: OpSetParams, ID: "a", Params: map[string]any{"k": v}}), `params "k"`)
	}
	require.NoError(t, CheckNumbers(Op{Op: OpSetParams, ID: "a", Params: map[string]any{"k": 1e308, "n": json.Number("-1.7e308")}}))
}
