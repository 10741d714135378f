package metrics

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// sameRecord compares records, NaN equal to NaN.
func sameRecord(t *testing.T, want, got Record, line string) {
	t.Helper()
	require.Equal(t, want.Step, got.Step, line)
	require.Equal(t, want.Epoch, got.Epoch, line)
	require.Equal(t, want.WallTime, got.WallTime, line)
	require.Equal(t, len(want.Metrics), len(got.Metrics), line)
	for k, v := range want.Metrics {
		g, ok := got.Metrics[k]
		require.True(t, ok, "%s: %s", line, k)
		if math.IsNaN(v) {
			require.True(t, math.IsNaN(g), line)
		} else {
			require.Equal(t, v, g, line)
		}
	}
	require.Equal(t, len(want.At), len(got.At), line)
	for k, v := range want.At {
		require.Equal(t, v, got.At[k], line)
	}
	require.Equal(t, want.Restart, got.Restart, line)
}

// The scanner reads what encoding/json reads, and gives up where it should.
func TestScannerAgreesWithJSON(t *testing.T) {
	scans := []string{
		`{"step": 12, "epoch": 1, "wall_time": 1712345678.1234567, "metrics": {"loss": 0.25, "lr": 1e-05, "ünï": 3.0}}`,
		`{"step":3,"epoch":null,"wall_time":2.5,"metrics":{"loss":"NaN","x":"-Infinity","y":"Infinity","s":"text","n":null,"l":[1,{"a":[2]}],"o":{"p":"\"}"}}}`,
		`{"step": 2, "metrics": {"loss": NaN, "v": Infinity, "w": -Infinity}}`,
		`{"step": 7, "epoch": 0, "wall_time": 1.0, "metrics": {}, "restart": {"previous_last_step": 5}}`,
		`{"step": 7, "epoch": 0, "wall_time": 1.0, "metrics": {}, "restart": {}}`,
		`{"step": 9, "metrics": {"a": 1, "b": 2}, "metrics_at": {"b": 8}, "phase": "train", "extra": {"k": [1, 2, {"x": "y\\z"}], "t": true}}`,
		`  {"metrics": {"a": -0.0}, "step": -3}  `,
	}
	for _, l := range scans {
		var sc scanner
		sc.b = []byte(l)
		var got Record
		require.True(t, sc.record(&got), "the scanner reads %s", l)
		want, err := parseJSON([]byte(l))
		require.NoError(t, err, l)
		sameRecord(t, want, got, l)
	}
	giveUp := []string{
		`{"step": 1, "metrics": {"a\"b": 1}}`,   // escaped key: encoding/json's
		`{"step": 1, "metrics": {"a": 1}} junk`, // trailing bytes
		`{"step": 1.5, "metrics": {}}`,          // not an integer step
		`{"metrics": {"a": 1}}`,                 // no step
		`{"step": 1, "metrics": {"a": 1}`,       // torn
		`{"step": 1, "metrics": {"a": 1,}}`,
	}
	for _, l := range giveUp {
		var sc scanner
		sc.b = []byte(l)
		require.False(t, sc.record(&Record{}), l)
	}
	r, err := ParseLine([]byte(giveUp[0]))
	require.NoError(t, err)
	require.Equal(t, 1.0, r.Metrics[`a"b`], "encoding/json reads what the scanner leaves")
	for _, l := range giveUp[1:] {
		_, err := ParseLine([]byte(l))
		require.Error(t, err, l)
	}
}

// Lines the Writer writes, with random names and values, read the same both ways.
func TestScannerReadsWriterLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, Options{Full: 3})
	rng := rand.New(rand.NewPCG(3, 4))
	for s := int64(0); s < 300; s++ {
		var e Entry
		e.Reset(s)
		e.Epoch = rng.Float64() * 10
		e.Keep = rng.IntN(10) == 0
		for range rng.IntN(6) {
			v := math.Float64frombits(rng.Uint64())
			if rng.IntN(3) == 0 {
				v = rng.NormFloat64()
			}
			e.Set(fmt.Sprintf("m%d/ü", rng.IntN(8)), v)
		}
		w.Write(&e)
	}
	require.NoError(t, w.Close())
	recs, err := Read(path, -1)
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	for _, l := range splitLines(content(t, path)) {
		var sc scanner
		sc.b = []byte(l)
		var got Record
		require.True(t, sc.record(&got), l)
		want, err := parseJSON([]byte(l))
		require.NoError(t, err, l)
		sameRecord(t, want, got, l)
	}
}

func splitLines(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"step": 1, "epoch": 0, "wall_time": 1.5, "metrics": {"loss": 0.5}}`))
	f.Add([]byte(`{"step": 2, "metrics": {"loss": NaN}, "x": [[{}]]}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var sc scanner
		sc.b = line
		var got Record
		if !sc.record(&got) {
			return
		}
		// encoding/json matches keys regardless of case and replaces invalid UTF-8; the scanner
		// does neither. Compare where that cannot matter.
		if !utf8.Valid(line) || !bytes.Equal(bytes.ToLower(line), line) {
			return
		}
		want, err := parseJSON(line)
		if err != nil {
			return // the scanner is more lenient: bare non-finite numbers, leading zeros
		}
		sameRecord(t, want, got, string(line))
	})
}
