package params

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type ruled struct {
	Every    int            `hotcb:"every,min=1"`
	Ratio    float64        `hotcb:"ratio,min=0,max=1"`
	Small    uint8          `hotcb:",max=10"`
	Interval time.Duration  `hotcb:"interval,min=10ms,max=1"`
	Mode     string         `hotcb:"mode,oneof=sum|mean|max"`
	Name     string         `hotcb:"name,min=1,max=4"`
	Factor   int            `hotcb:"factor,oneof=1|2|4"`
	Stats    []string       `hotcb:"stats,oneof=mean|std"`
	Betas    [2]float64     `hotcb:"betas,min=0,max=0.999"`
	Limits   map[string]int `hotcb:"limits,min=0"`
	Opt      *int           `hotcb:"opt,max=5"`
	Period   time.Duration  `hotcb:"period,oneof=1s|1m"`
}

func TestRules(t *testing.T) {
	tests := []struct {
		in  map[string]any
		msg string // "" when it passes
	}{
		{map[string]any{"every": 1, "ratio": 0, "small": 10, "interval": "10ms", "mode": "sum", "name": "abcd"}, ""},
		{map[string]any{"every": 0}, `param "every": want >= 1 (min=1), got 0`},
		{map[string]any{"every": "-3"}, `param "every": want >= 1 (min=1), got -3`},
		{map[string]any{"ratio": 1.5}, `param "ratio": want <= 1 (max=1), got 1.5`},
		{map[string]any{"ratio": -0.1}, `param "ratio": want >= 0 (min=0), got -0.1`},
		{map[string]any{"ratio": "inf"}, `param "ratio": want <= 1 (max=1), got +Inf`},
		{map[string]any{"small": 11}, `param "small": want <= 10 (max=10), got 11`},
		{map[string]any{"interval": "1ms"}, `param "interval": want >= 10ms (min=10ms), got 1ms`},
		{map[string]any{"interval": 2}, `param "interval": want <= 1s (max=1), got 2s`},
		{map[string]any{"interval": "1s"}, ""},
		{map[string]any{"mode": "avg"}, `param "mode": want one of sum, mean, max (oneof=sum|mean|max), got "avg"`},
		{map[string]any{"name": ""}, `param "name": want at least 1 character (min=1), got ""`},
		{map[string]any{"name": "héllo"}, `param "name": want at most 4 characters (max=4), got "héllo"`},
		{map[string]any{"name": "héll"}, ""},
		{map[string]any{"factor": "4"}, ""},
		{map[string]any{"factor": 3}, `param "factor": want one of 1, 2, 4 (oneof=1|2|4), got 3`},
		{map[string]any{"stats": "mean,std"}, ""},
		{map[string]any{"stats": "mean,var"}, `param "stats.1": want one of mean, std (oneof=mean|std), got "var"`},
		{map[string]any{"betas": []any{0.9, 1}}, `param "betas.1": want <= 0.999 (max=0.999), got 1`},
		{map[string]any{"limits": map[string]any{"a": 1, "b": -1}}, `param "limits.b": want >= 0 (min=0), got -1`},
		{map[string]any{"limits.c": -2}, `param "limits.c": want >= 0 (min=0), got -2`},
		{map[string]any{"opt": 6}, `param "opt": want <= 5 (max=5), got 6`},
		{map[string]any{"opt": nil}, ""},
		{map[string]any{"period": 60}, ""},
		{map[string]any{"period": "2s"}, `param "period": want one of 1s, 1m0s (oneof=1s|1m), got 2s`},
	}
	for _, tc := range tests {
		got := ruled{Every: 5}
		err := Decode(tc.in, &got)
		if tc.msg == "" {
			require.NoError(t, err, "%v", tc.in)
			continue
		}
		require.EqualError(t, err, tc.msg)
		require.Equal(t, ruled{Every: 5}, got)
		es := Errors(err)
		require.Len(t, es, 1)
		require.NotEmpty(t, es[0].Rule)
	}
}

func TestRulesCheckOnlyWhatIsGiven(t *testing.T) {
	got := ruled{} // Every is 0, below its min, but nobody set it
	require.NoError(t, Decode(map[string]any{"mode": "max"}, &got))
	require.Equal(t, "max", got.Mode)
	// An existing out-of-range map entry is checked when the map is touched.
	got.Limits = map[string]int{"old": -1}
	require.EqualError(t, Decode(map[string]any{"limits.new": 1}, &got), `param "limits.old": want >= 0 (min=0), got -1`)
}
