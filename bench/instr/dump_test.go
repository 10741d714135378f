package instr

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// A dump as callgrind 3.19 writes one for CALLGRIND_DUMP_STATS_AT("row1-go") with
// --separate-threads=yes --dump-line=no --cache-sim=yes (trailing zero events left out).
const sample = `# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4242
cmd:  ./benchrun -instr-serve
part: 3
thread: 1

desc: Trigger: Client Request: row1-go

positions: line
events: Ir Dr Dw I1mr D1mr
summary: 1000 300 200 10

ob=(1) /usr/lib/libc.so.6
fl=(1) ???
fn=(1) malloc
0 300 100 50 2 1
cob=(2) /usr/lib/libtorch_cpu.so
cfi=(1)
cfn=(2) at::add
calls=4 0
0 5000 1 1 1

ob=(2)
fn=(2)
0 600 150 100 6
+1 50 50 50 2

fn=(3) hc_call
0 50
totals: 1000 300 200 10
`

func TestReadDumpAndProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "go.4242.3-01")
	require.NoError(t, os.WriteFile(path, []byte(sample), 0o644))

	d, err := ReadDump(path)
	require.NoError(t, err)
	require.Equal(t, 4242, d.PID)
	require.Equal(t, 3, d.Part)
	require.Equal(t, 1, d.Thread)
	require.Equal(t, "row1-go", d.Label())
	require.Equal(t, []string{"Ir", "Dr", "Dw", "I1mr", "D1mr"}, d.Events)
	require.Equal(t, []uint64{1000, 300, 200, 10, 0}, d.Totals) // padded to the events
	ir, ok := d.Event("Ir")
	require.True(t, ok)
	require.EqualValues(t, 1000, ir)
	_, ok = d.Event("DLmr")
	require.False(t, ok)

	p, err := ReadProfile(path)
	require.NoError(t, err)
	// The cost line after calls= is the call's inclusive cost: not malloc's own.
	require.Equal(t, []uint64{300, 100, 50, 2, 1}, p.Self[Fn{"/usr/lib/libc.so.6", "malloc"}])
	// Compressed names resolve to their first definition (fn=(2) was defined by cfn=).
	require.Equal(t, []uint64{650, 200, 150, 8}, p.Self[Fn{"/usr/lib/libtorch_cpu.so", "at::add"}])
	require.Equal(t, []uint64{50}, p.Self[Fn{"/usr/lib/libtorch_cpu.so", "hc_call"}])
	var sum uint64
	for _, v := range p.Self {
		sum += v[0]
	}
	require.EqualValues(t, 1000, sum) // the exclusive costs add up to the total

	// FindWindow: one dump per label; the empty file of a running process is skipped.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.4242"), nil, 0o644))
	seen := map[string]Dump{}
	got, err := FindWindow(dir, "go", 4242, "row1-go", seen)
	require.NoError(t, err)
	require.Equal(t, path, got.Path)
	require.Contains(t, seen, path)
	_, err = FindWindow(dir, "go", 4242, "row2-go", seen)
	require.ErrorContains(t, err, `no callgrind dump labelled "row2-go" in `+dir+"/go.4242.*")
	_, err = FindWindow(dir, "cpp", 4242, "row1-go", nil)
	require.Error(t, err)
	// Another process's dumps (an earlier run's, in a kept directory) do not count.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.4243.3-01"), []byte(sample), 0o644))
	_, err = FindWindow(dir, "go", 4242, "row1-go", nil)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.4242.4-01"), []byte(sample), 0o644))
	_, err = FindWindow(dir, "go", 4242, "row1-go", nil)
	require.ErrorContains(t, err, "2 callgrind dumps")
}

func TestArgs(t *testing.T) {
	o := Options{Valgrind: "/usr/bin/valgrind", Dir: "/tmp/d", Name: "cpp"}
	a := o.Args("ref", "serve")
	require.Equal(t, "/usr/bin/valgrind", a[0])
	require.Contains(t, a, "--instr-atstart=no")
	require.Contains(t, a, "--separate-threads=yes")
	require.Contains(t, a, "--callgrind-out-file=/tmp/d/cpp.%p")
	require.NotContains(t, a, "--cache-sim=yes")
	require.Equal(t, []string{"ref", "serve"}, a[len(a)-2:])
	o.CacheSim = true
	require.Contains(t, o.Args(), "--cache-sim=yes")
}

// TestWindowUnderCallgrind runs this test binary under callgrind and counts windows of a loop:
// the same loop twice must count the same instructions, and twice the loop about twice as many
// (not exactly: a one-time event such as a stack copy lands in some window). Skipped without
// valgrind, in -short and in a build without -tags callgrind.
func TestWindowUnderCallgrind(t *testing.T) {
	labels := []string{"once", "again", "twice"}
	if os.Getenv("HOTCB_INSTR_CHILD") != "" {
		// A dump holds the requesting thread only: the windows must not move between threads.
		runtime.LockOSThread()
		bridge.CallgrindBegin() // first-time work (stack growth, ...) outside the windows compared
		spin(100000)
		bridge.CallgrindEnd("warm")
		for i, n := range []int{100000, 100000, 200000} {
			bridge.CallgrindBegin()
			spin(n)
			bridge.CallgrindEnd(labels[i])
		}
		return
	}
	if testing.Short() || raceEnabled {
		t.Skip("runs valgrind (not in -short, nor with -race)")
	}
	vg, err := exec.LookPath("valgrind")
	if err != nil {
		t.Skip("no valgrind")
	}
	if !bridge.CallgrindAvailable() {
		t.Skip("built without -tags callgrind")
	}
	require.False(t, bridge.OnValgrind())
	dir := t.TempDir()
	preload := filepath.Join(dir, "libpreload.so")
	require.NoError(t, BuildPreload("cc", preload))
	o := Options{Valgrind: vg, Dir: dir, Name: "t"}
	args := o.Args(os.Args[0], "-test.run=^TestWindowUnderCallgrind$")
	cmd := exec.Command(args[0], args[1:]...)
	// Without asynchronous preemption (sysmon's signal could land in the loop, 10 ms of
	// valgrind's slow time, and count its handler) nor RDTSCP (GoDebug), and with the preload
	// that keeps libtorch's libhwy from dying of SIGILL at load time (BuildPreload).
	cmd.Env = append(os.Environ(), "HOTCB_INSTR_CHILD=1", "GODEBUG="+GoDebug, PreloadEnv(preload))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	var ir []float64
	for _, l := range labels {
		d, err := FindWindow(dir, "t", cmd.Process.Pid, l, nil)
		require.NoError(t, err)
		v, _ := d.Event("Ir")
		ir = append(ir, float64(v))
	}
	t.Logf("windows: %v instructions", ir)
	require.InEpsilon(t, ir[0], ir[1], 0.005)
	require.InEpsilon(t, 2*ir[0], ir[2], 0.03)
}

//go:noinline
func spin(n int) int {
	s := 0
	for i := range n {
		s += i ^ (s >> 3)
	}
	return s
}
