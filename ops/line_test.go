package ops

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every line hotcb's Python CLI wrote (kernel/testdata/hotcb-python) reads back and is written
// again byte for byte: the fields in hotcb's order, its separators, its key order, 1.0 as 1.0.
func TestMarshalLineWritesHotcbsLines(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "kernel", "testdata", "hotcb-python", "cli-commands.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	require.Len(t, lines, 9)
	for _, l := range lines {
		op, err := Parse([]byte(l))
		require.NoError(t, err, l)
		got, err := MarshalLine(op)
		require.NoError(t, err)
		require.Equal(t, l, string(got))
	}
}

func TestMarshalLineValues(t *testing.T) {
	f := false
	op := Op{Module: "cb", Op: OpLoad, ID: "x", Target: &CallbackTarget{Kind: "go_file", Path: "a \"b\".go", Symbol: "X"},
		Init:          map[string]any{"z": int64(1), "a": []any{1.5, "s", nil, true, map[string]any{"k": int64(2), "b": 1e-5}}},
		InitOrder:     []string{"z", "missing", "z"},
		Enabled:       &f,
		SourceCapture: &SourceCapture{SHA256: "ab", CapturedPath: "hotcb.sources/ab.go"}}
	got, err := MarshalLine(op)
	require.NoError(t, err)
	require.Equal(t, `{"module": "cb", "op": "load", "id": "x", "target": {"kind": "go_file", "path": "a \"b\".go", "symbol": "X"}, `+
		`"init": {"z": 1, "a": [1.5, "s", null, true, {"b": 1e-05, "k": 2}]}, "enabled": false, `+
		`"source_capture": {"sha256": "ab", "captured_path": "hotcb.sources/ab.go"}}`, string(got))
	back, err := Parse(got)
	require.NoError(t, err)
	require.Equal(t, op.Init, back.Init)
	require.Equal(t, []string{"z", "a"}, back.InitOrder)

	_, err = MarshalLine(Op{Op: OpSetParams, ID: "x", Params: map[string]any{"v": math.NaN()}})
	require.ErrorContains(t, err, "not a number JSON can hold")
	_, err = MarshalLine(Op{Op: OpSetParams, ID: "x", Params: map[string]any{"v": struct{}{}}})
	require.ErrorContains(t, err, "a value of type struct {}")
}
