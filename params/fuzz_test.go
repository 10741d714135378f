package params

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type fuzzSub struct {
	N    int `hotcb:"n,min=-5,max=5"`
	Tags []string
}

// fuzzParams is what a callback's parameters look like: scalars with rules, lists, maps,
// nested and optional parts. Its defaults pass its own rules, so an Encode of any state it can
// reach decodes again into a zero value.
type fuzzParams struct {
	Every      int           `hotcb:"every,min=1"`
	Level      int8          // key "level"
	Count      uint16        // key "count"
	Big        uint64        // key "big"
	Ratio      float64       `hotcb:"ratio,min=0,max=1"`
	Scale      float32       // key "scale"
	On         bool          // key "on"
	Mode       string        `hotcb:"mode,oneof=sum|mean"`
	Label      string        `hotcb:"label,max=8"`
	Interval   time.Duration `hotcb:"interval,min=0"`
	Layers     []int         `hotcb:"layers,min=0"`
	Names      []string      // key "names"
	Betas      [2]float64    // key "betas"
	Thresholds map[string]float64
	Window     struct {
		Size  int `hotcb:"size,max=100"`
		Decay *float64
	}
	Opt   *int
	Subs  map[string]*fuzzSub
	Waits []time.Duration
	Extra any
}

func fuzzDefaults() fuzzParams {
	p := fuzzParams{Every: 1, Ratio: 0.5, Mode: "sum", Thresholds: map[string]float64{"loss": 10}}
	p.Window.Size = 8
	return p
}

// fuzzSource turns fuzz bytes into a params map the way a run would receive one: a JSON
// object (numbers as float64 or json.Number), or the CLI's k=v lines, all values text.
func fuzzSource(data []byte, useNumber, kv bool) (map[string]any, bool) {
	if kv {
		m := map[string]any{}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, false
			}
			m[k] = v
		}
		return m, true
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if useNumber {
		dec.UseNumber()
	}
	var m map[string]any
	if dec.Decode(&m) != nil {
		return nil, false
	}
	return m, true
}

func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"every": 10, "ratio": 0.25, "mode": "mean", "on": true}`,
		`{"every": 2.5}`,
		`{"evry": 10}`,
		`{"level": 300, "count": -1, "big": 18446744073709551615}`,
		`{"scale": 1e39, "ratio": "3e-4", "interval": "250ms", "waits": "1s, 2"}`,
		`{"layers": [0, 1, 2], "names": "a,b,c", "betas": [0.9, 0.999]}`,
		`{"layers": "[1, -2]", "betas": [0.9]}`,
		`{"thresholds": {"loss": 1, "acc": null}, "thresholds.grad": 5}`,
		`{"window": {"size": 200, "decay": 0.9}, "window.decay": null}`,
		`{"window.size": 4, "opt": 3, "subs": {"a": {"n": 2, "tags": "x"}, "b": null}}`,
		`{"subs.a.n": 9, "subs": {"c": {"n": "x"}}}`,
		`{"extra": {"any": [1, "two", null]}, "label": "toolongforit"}`,
		`{"Every_N": 1, "EVERY": 3, "every": 4}`,
		`{"mode": 3, "label": true, "on": "maybe", "interval": 1e300}`,
	} {
		f.Add([]byte(seed), false, byte(0))
		f.Add([]byte(seed), true, byte(1))
	}
	f.Add([]byte("every=10\nnames=a,b\nratio=0.5"), false, byte(4))
	f.Add([]byte("every=x\nlayers=[1,2]\nwindow.size=3\nsubs.a.n=1"), false, byte(6))

	f.Fuzz(func(t *testing.T, data []byte, useNumber bool, flags byte) {
		src, ok := fuzzSource(data, useNumber, flags&4 != 0)
		if !ok {
			return
		}
		var opts []Option
		if flags&1 != 0 {
			opts = append(opts, AllowUnknown())
		}
		if flags&2 != 0 {
			opts = append(opts, ScalarsAsStrings())
		}
		dst := fuzzDefaults()
		before, beforeEnc := dst, Encode(dst)
		srcCopy, _ := fuzzSource(data, useNumber, flags&4 != 0)

		err := Decode(src, &dst, opts...)
		require.Equal(t, srcCopy, src, "Decode must not modify its input")
		if err != nil {
			require.NotEmpty(t, Errors(err), "every failure is an *Error")
			for _, e := range Errors(err) {
				require.NotEmpty(t, e.Error())
			}
			require.Equal(t, before, dst, "a failed Decode leaves dst alone")
			require.Equal(t, beforeEnc, Encode(dst), "nor anything dst points to")
			return
		}

		again := dst
		require.NoError(t, Decode(src, &again, opts...))
		require.Equal(t, dst, again, "decoding the same map twice gives the same struct")

		var back fuzzParams
		require.NoError(t, Decode(Encode(dst), &back))
		require.Equal(t, dst, back, "Encode then Decode gives the struct back")
	})
}
