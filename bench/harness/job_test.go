package harness

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStartJob starts a job of three shell ranks: rank 0 answers "info" with its torchrun
// variables; the others write theirs to a file and exit; Close sends quit to rank 0.
func TestStartJob(t *testing.T) {
	dir := t.TempDir()
	script := `if [ "$RANK" = 0 ]; then
  read -r cmd
  echo "{\"cmd\":\"$cmd\",\"rank\":$RANK,\"world\":$WORLD_SIZE,\"local\":$LOCAL_RANK,\"port\":$MASTER_PORT,\"addr\":\"$MASTER_ADDR\",\"ifname\":\"$GLOO_SOCKET_IFNAME\",\"extra\":\"$EXTRA\"}"
  read -r cmd; [ "$cmd" = quit ]
else
  echo "$RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_PORT $EXTRA" > "$DIR/rank$RANK"
fi`
	j, err := StartJob("/bin/sh", []string{"-c", script}, []string{"DIR=" + dir, "EXTRA=x"}, 3)
	require.NoError(t, err)
	require.Len(t, j.Pids(), 3)
	var a struct {
		Cmd                string
		Rank, World, Local int
		Port               int
		Addr, Ifname       string
		Extra              string
	}
	require.NoError(t, j.Do("info", &a))
	require.Equal(t, "info", a.Cmd)
	require.Equal(t, 0, a.Rank)
	require.Equal(t, 3, a.World)
	require.Equal(t, "127.0.0.1", a.Addr)
	require.Equal(t, "lo", a.Ifname)
	require.Equal(t, "x", a.Extra)
	require.NoError(t, j.Close(10*time.Second))
	for r := 1; r < 3; r++ {
		b, err := os.ReadFile(filepath.Join(dir, "rank"+string(rune('0'+r))))
		require.NoError(t, err)
		require.Equal(t, []string{string(rune('0' + r)), "3", "3", itoa(a.Port), "x"}, strings.Fields(string(b)))
	}

	// A rank that does not stop is killed after the grace.
	j, err = StartJob("/bin/sh", []string{"-c", `if [ "$RANK" = 1 ]; then exec sleep 60; fi`}, nil, 2)
	require.NoError(t, err)
	start := time.Now()
	require.ErrorContains(t, j.Close(200*time.Millisecond), "killed")
	require.Less(t, time.Since(start), 5*time.Second)
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestScaling checks the throughput arithmetic and where the report shows it.
func TestScaling(t *testing.T) {
	base := Result{Name: "one", Unit: "ms/step", GoMedian: 16, PyMedian: 20, GoRounds: []float64{16}, PyRounds: []float64{20}}
	row := Result{Name: "two", Unit: "ms/step", GoMedian: 20, PyMedian: 25, GoRounds: []float64{20}, PyRounds: []float64{25}}
	s, err := NewScaling(row, base, 2, 64)
	require.NoError(t, err)
	require.InDelta(t, 64/0.016, s.GoBaseSec, 1e-9)
	require.InDelta(t, 128/0.020, s.GoImagesSec, 1e-9)
	require.InDelta(t, 1.6, s.GoSpeedup, 1e-12)
	require.InDelta(t, 0.8, s.GoEfficiency, 1e-12)
	require.InDelta(t, 1.6, s.PySpeedup, 1e-12)
	require.Equal(t, "one", s.Baseline)

	row.Scaling = s
	rep := &Report{Results: []Result{base, row}}
	var sb strings.Builder
	require.NoError(t, rep.WriteTable(&sb))
	require.Contains(t, sb.String(), `two: scaling 1 → 2 ranks (64 images per rank and step): Go 4000 → 6400 images/s, ×1.60 (efficiency 0.80); Python 3200 → 5120 images/s, ×1.60 (efficiency 0.80), against "one"`)
	b, err := json.Marshal(row)
	require.NoError(t, err)
	require.Contains(t, string(b), `"scaling":{"baseline":"one","ranks":2,"batch_per_rank":64,"go_images_per_s":6400`)

	// Without Python rounds the Python fields stay out.
	base.PyRounds, row.PyRounds = nil, nil
	s, err = NewScaling(row, base, 2, 64)
	require.NoError(t, err)
	require.Zero(t, s.PySpeedup)
	require.NotContains(t, s.String(), "Python")
	_, err = NewScaling(Result{Name: "x", Unit: "ms/step"}, base, 2, 64)
	require.Error(t, err)
}
