package plane

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSafePointsAfter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	starts := []time.Time{at(0), at(10), at(20), at(30)}
	for _, c := range []struct {
		name    string
		written time.Time
		applied int
		want    int
	}{
		{"next safe point", at(5), 1, 1},
		{"one missed", at(5), 2, 2},
		{"began before the write", at(15), 1, 0},
		{"written before every start", at(-1), 0, 1},
		{"written at a start counts that one as before", at(10), 2, 1},
		{"after the last start", at(35), 3, 0},
	} {
		require.Equal(t, c.want, SafePointsAfter(starts, c.written, c.applied), c.name)
	}

}

// fakeCLI writes a shell script standing in for the hotcb binary: it appends the set_params
// line the real CLI writes (one write), or does what body says.
func fakeCLI(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hotcb")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	return p
}

// appendLine is the real CLI's line for `hotcb --dir $2 cb set_params probe seq=N` ($6 is seq=N).
const appendLine = `n=${6#seq=}; printf '{"module":"cb","op":"set_params","id":"probe","params":{"seq":%s}}\n' "$n" >> "$2/hotcb.commands.jsonl"`

func TestMeasureLatencyWithAFakeCLI(t *testing.T) {
	rows, err := MeasureLatency(LatencyOptions{CLI: fakeCLI(t, appendLine), Commands: 3,
		Cadences: []time.Duration{2 * time.Millisecond}, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		t.Logf("%s: %.3f ms [%.3f–%.3f], safe points %v, from exit %+.3f ms", r.Name, r.Median, r.Min, r.Max, r.SafePoints, r.FromExit.Median)
		require.Empty(t, r.Errors)
		require.Equal(t, 3, r.Commands)
		require.Len(t, r.SafePoints, 3)
		require.NotNil(t, r.Met)
		require.Equal(t, r.MaxSafePoints <= GoalSafePoints, *r.Met)
		require.Less(t, r.Max, 5000.0)
		require.Greater(t, r.Steps, int64(0))
	}
}

func TestMeasureLatencyFailingCLI(t *testing.T) {
	rows, err := MeasureLatency(LatencyOptions{CLI: fakeCLI(t, "echo 'no such run directory' >&2; exit 3"), Commands: 2,
		Targets: []string{Kernel}, Cadences: []time.Duration{time.Millisecond}, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Len(t, rows[0].Errors, 2)
	require.Contains(t, rows[0].Errors[0], "no such run directory")
	require.False(t, *rows[0].Met)
	require.Zero(t, rows[0].Commands)
}

func TestMeasureLatencyCommandNeverApplied(t *testing.T) {
	start := time.Now()
	rows, err := MeasureLatency(LatencyOptions{CLI: fakeCLI(t, "exit 0"), Commands: 1, Timeout: 300 * time.Millisecond,
		Targets: []string{Controller}, Cadences: []time.Duration{time.Millisecond}, Dir: t.TempDir()})
	require.NoError(t, err)
	require.Contains(t, rows[0].Errors[0], "not applied within")
	require.False(t, *rows[0].Met)
	require.Less(t, time.Since(start), 5*time.Second)
}

func TestMeasureLatencyMissingCLI(t *testing.T) {
	_, err := MeasureLatency(LatencyOptions{CLI: filepath.Join(t.TempDir(), "nope")})
	require.ErrorContains(t, err, "hotcb CLI")
}
