package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/ops"
)

func TestParseValue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"true", true}, {"False", false}, {"TRUE", true}, {" true ", true},
		{"50", int64(50)}, {"-3", int64(-3)}, {"+7", int64(7)}, {"007", int64(7)}, {"0", int64(0)},
		{"9223372036854775807", int64(9223372036854775807)},
		{"9223372036854775808", uint64(9223372036854775808)}, // a 64-bit seed stays exact
		{"+018446744073709551615", uint64(18446744073709551615)},
		{"99999999999999999999", 1e20}, // beyond uint64: a float, as any other number
		{"+0099999999999999999999", 1e20},
		{"3e-4", 3e-4}, {"3E-4", 3e-4}, {"1.5", 1.5}, {"-0.25", -0.25}, {".5", 0.5}, {"5.", 5.0}, {"1e3", 1000.0},
		{"1.0", 1.0},
		{"", ""}, {"   ", ""}, {"conv3", "conv3"}, {"features.0", "features.0"},
		{"inf", "inf"}, {"NaN", "NaN"}, {"0x10", "0x10"}, {"1_000", "1_000"}, {"1e", "1e"}, {"--1", "--1"},
		{"yes", "yes"}, {"null", "null"}, {`"quoted"`, `"quoted"`},
		{`{"type":"linear","end":2.0,"steps":10}`, map[string]any{"type": "linear", "end": 2.0, "steps": int64(10)}},
		{`["fc1","fc2"]`, []any{"fc1", "fc2"}},
		{`[1, 2.5, {"n": [3]}]`, []any{int64(1), 2.5, map[string]any{"n": []any{int64(3)}}}},
		{`{}`, map[string]any{}},
		{`{"a":1`, `{"a":1`},   // not valid JSON: a string, as in hotcb
		{`[1] [2]`, `[1] [2]`}, // two values: a string
		{`{}}`, `{}}`},
	} {
		got, err := ParseValue(tc.in)
		require.NoError(t, err, "%q", tc.in)
		require.Equal(t, tc.want, got, "%q", tc.in)
	}
	for _, bad := range []string{"1e999", "-1.5e400", `{"lr": 1e999}`, `[1, [-2e400]]`} {
		_, err := ParseValue(bad)
		require.Error(t, err, bad)
	}
}

func TestParseKV(t *testing.T) {
	got, err := ParseKV([]string{"every=50", "lr=3e-4", "name=", "layers=[\"a\"]", "url=http://x?a=b", "every=60"})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"every": int64(60), "lr": 3e-4, "name": "", "layers": []any{"a"}, "url": "http://x?a=b"}, got)

	for _, bad := range [][]string{{"every"}, {"=3"}, {"ok=1", "nope"}, {"x=1e999"}} {
		_, err := ParseKV(bad)
		require.Error(t, err, "%q", bad)
		var u *usageError
		require.ErrorAs(t, err, &u)
	}
	m, err := ParseKV(nil)
	require.NoError(t, err)
	require.Empty(t, m)
}

// FuzzParseKV: any argument either is refused or gives params that make a valid set_params line
// the controller reads back to the same values.
func FuzzParseKV(f *testing.F) {
	for _, s := range []string{"every=50", "lr=3e-4", "k=", "=", "x", `j={"a":[1,2]}`, "b=TRUE", "n=99999999999999999999", "f=1e999", "s=\x00\xff", `a=[1,`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, arg string) {
		params, err := ParseKV([]string{arg})
		if err != nil {
			return
		}
		op := ops.Op{Module: "cb", Op: ops.OpSetParams, ID: "x", Params: params}
		require.NoError(t, op.Validate())
		line, err := ops.Marshal(op)
		require.NoError(t, err)
		back, err := ops.Parse(line)
		require.NoError(t, err, "%s", line)
		// Same values once both sides are in JSON's form.
		a, _ := json.Marshal(params)
		b, _ := json.Marshal(back.Params)
		require.JSONEq(t, string(a), string(b))
	})
}
