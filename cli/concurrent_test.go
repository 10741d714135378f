package cli

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

// readOps parses every line of the commands file; any bad line fails the test.
func readOps(t *testing.T, dir string) []ops.Op {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, rundir.Commands))
	require.NoError(t, err)
	defer f.Close()
	var out []ops.Op
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		op, err := ops.Parse(sc.Bytes())
		require.NoError(t, err, "line %d: %q", n, sc.Text())
		out = append(out, op)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestConcurrentWriters: 8 goroutines × 200 commands give exactly 1600 valid lines, each once.
func TestConcurrentWriters(t *testing.T) {
	dir := newRunDir(t)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := runCLIWith(t.Context(), time.Now, "--dir", dir, "cb", "set_params", fmt.Sprintf("w%d", g), "i="+strconv.Itoa(i), "note=concurrent writer")
				if r.err != nil {
					errs <- r.err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	checkAllWritten(t, readOps(t, dir), writers, each, "w")
}

// TestConcurrentProcesses: two processes (this test binary, re-executed as a writer) appending
// at once give exactly the right number of valid lines, each once.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := newRunDir(t)
	const procs, each = 2, 300
	var cmds []*exec.Cmd
	for p := 0; p < procs; p++ {
		c := exec.Command(os.Args[0], "-test.run=^$")
		c.Env = append(os.Environ(), "HOTCB_CLI_HELPER_DIR="+dir, "HOTCB_CLI_HELPER_N="+strconv.Itoa(each),
			fmt.Sprintf("HOTCB_CLI_HELPER_TAG=p%d", p))
		c.Stderr = os.Stderr
		require.NoError(t, c.Start())
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		require.NoError(t, c.Wait())
	}
	checkAllWritten(t, readOps(t, dir), procs, each, "p")
}

func checkAllWritten(t *testing.T, got []ops.Op, writers, each int, prefix string) {
	t.Helper()
	require.Len(t, got, writers*each)
	seen := map[string]bool{}
	for _, op := range got {
		require.Equal(t, "cb", op.Module)
		require.Equal(t, ops.OpSetParams, op.Op)
		k := op.ID + "/" + fmt.Sprint(op.Params["i"])
		require.False(t, seen[k], "duplicate %s", k)
		seen[k] = true
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			require.True(t, seen[fmt.Sprintf("%s%d/%d", prefix, w, i)], "missing %s%d/%d", prefix, w, i)
		}
	}
}
