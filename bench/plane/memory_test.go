package plane

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMain lets a test re-execute this test binary as a memory child (or a misbehaving one).
func TestMain(m *testing.M) {
	switch os.Getenv("PLANE_TEST_CHILD") {
	case "":
		os.Exit(m.Run())
	case "garbage":
		fmt.Println("warming up\nnot a report")
		os.Exit(0)
	case "die":
		fmt.Fprintln(os.Stderr, "child: something went wrong")
		os.Exit(2)
	case "hang":
		time.Sleep(time.Minute)
		os.Exit(0)
	default:
		steps, _ := strconv.Atoi(os.Getenv("PLANE_TEST_STEPS"))
		dir, _ := os.MkdirTemp("", "plane-child-")
		err := RunMemoryChild(os.Getenv("PLANE_TEST_CHILD"), steps, dir, os.Stdout)
		os.RemoveAll(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

func child(t *testing.T, mode string, steps int) *exec.Cmd {
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "PLANE_TEST_CHILD="+mode, "PLANE_TEST_STEPS="+strconv.Itoa(steps))
	return cmd
}

func TestParseVmRSS(t *testing.T) {
	n, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t  10 kB\nVmRSS:\t  123456 kB\nThreads: 3\n"))
	require.NoError(t, err)
	require.Equal(t, int64(123456), n)
	_, err = parseVmRSS([]byte("Name:\tx\n"))
	require.ErrorContains(t, err, "no VmRSS")
	_, err = parseVmRSS([]byte("VmRSS:\t12 MB\n"))
	require.Error(t, err)
	n, err = RSSKiB()
	require.NoError(t, err)
	require.Greater(t, n, int64(1000))
}

func TestParseMemoryChild(t *testing.T) {
	good := `{"workload":"cnn","steps":100,"warmup_steps":10,"callbacks":["timing"],"start_kib":102400,"end_kib":103424,` +
		`"samples":[{"step":5,"kib":200000},{"step":10,"kib":102400},{"step":50,"kib":110592},{"step":100,"kib":103424}],"seconds":1.5}`
	out := []byte("[timing] some line on stdout\n" + childMarker + good + "\n")
	r, err := ParseMemoryChild(out, "cnn")
	require.NoError(t, err)
	require.InDelta(t, 100.0, r.StartMiB, 1e-9)
	require.InDelta(t, 101.0, r.EndMiB, 1e-9)
	require.InDelta(t, 108.0, r.MaxMiB, 1e-9) // the warm-up sample (200000) does not count
	require.InDelta(t, 1.0, r.GrowthPct, 1e-9)
	require.InDelta(t, 8.0, r.MaxPct, 1e-9)
	require.True(t, *r.Met)
	require.Len(t, r.Samples, 4)

	grown := bytes.Replace(out, []byte(`"end_kib":103424`), []byte(`"end_kib":106496`), 1)
	r, err = ParseMemoryChild(grown, "cnn")
	require.NoError(t, err)
	require.InDelta(t, 4.0, r.GrowthPct, 1e-9)
	require.False(t, *r.Met)

	for name, bad := range map[string]string{
		"no report":  "just noise\n",
		"empty":      "",
		"bad json":   childMarker + "{\"steps\":\n",
		"no rss":     childMarker + `{"workload":"cnn","steps":100,"warmup_steps":10,"start_kib":0,"end_kib":0,"samples":[]}` + "\n",
		"bad warmup": childMarker + `{"workload":"cnn","steps":100,"warmup_steps":100,"start_kib":1,"end_kib":1,"samples":[{"step":1,"kib":1}]}` + "\n",
	} {
		_, err := ParseMemoryChild([]byte(bad), "x")
		require.Error(t, err, name)
	}
}

func TestRunChildFailures(t *testing.T) {
	_, err := RunChild(context.Background(), child(t, "die", 0))
	require.ErrorContains(t, err, "something went wrong")

	out, err := RunChild(context.Background(), child(t, "garbage", 0))
	require.NoError(t, err)
	_, err = ParseMemoryChild(out, "x")
	require.ErrorContains(t, err, "no report line")

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = RunChild(ctx, child(t, "hang", 0))
	require.ErrorContains(t, err, "killed")
	require.Less(t, time.Since(start), 10*time.Second)
}

func TestMeasureMemoryChildren(t *testing.T) {
	rows, err := MeasureMemory(MemoryOptions{MLPSteps: 40, CNNSteps: 10, Timeout: time.Minute,
		Command: func(w string, steps int) *exec.Cmd { return child(t, w, steps) }})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	for _, r := range rows {
		t.Logf("%s: %.1f → %.1f MiB (max %.1f), %+.2f%%", r.Name, r.StartMiB, r.EndMiB, r.MaxMiB, r.GrowthPct)
		require.Greater(t, r.StartMiB, 10.0)
		require.Len(t, r.Callbacks, 8)
		require.NotNil(t, r.Met)
	}
	require.Equal(t, 40, rows[0].Steps)
	require.Equal(t, 10, rows[0].WarmupSteps, "a quarter of the steps")

	_, err = MeasureMemory(MemoryOptions{MLPSteps: 40, CNNSteps: 10, Timeout: time.Minute,
		Command: func(string, int) *exec.Cmd { return child(t, "garbage", 0) }})
	require.ErrorContains(t, err, "memory mlp")
}

func TestRunMemoryChildBadInput(t *testing.T) {
	require.ErrorContains(t, RunMemoryChild("resnet", 100, t.TempDir(), &bytes.Buffer{}), "unknown workload")
	require.ErrorContains(t, RunMemoryChild("mlp", 3, t.TempDir(), &bytes.Buffer{}), "at least 10")
}
