package dist

// The harness that runs ranks as subprocesses: a test starts World copies of its own test binary
// with -test.run=^TestRankProcess$, torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, MASTER_PORT: a free port) and HOTCB_DIST_TEST_ROLE
// naming what the rank does. A rank writes its result as JSON to $HOTCB_DIST_TEST_OUT/rank<R>.json.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	roleEnv    = "HOTCB_DIST_TEST_ROLE"
	outEnv     = "HOTCB_DIST_TEST_OUT"
	timeoutEnv = "HOTCB_DIST_TEST_TIMEOUT" // the group's timeout, a time.Duration
	argEnv     = "HOTCB_DIST_TEST_ARG"     // the role's parameters, JSON
)

// roles are what a rank subprocess can do; each returns its result (written as JSON).
var roles = map[string]func(t *testing.T, g *Group, arg json.RawMessage) any{}

// TestRankProcess is not a test of its own: it is the body of a rank subprocess that another
// test started; run directly, it skips.
func TestRankProcess(t *testing.T) {
	role := os.Getenv(roleEnv)
	if role == "" {
		t.Skip("a rank of the multi-process tests: runs only as their subprocess")
	}
	f, ok := roles[role]
	require.True(t, ok, "unknown role %q", role)
	opts, err := FromEnv()
	require.NoError(t, err)
	opts.Timeout, err = time.ParseDuration(os.Getenv(timeoutEnv))
	require.NoError(t, err)
	g, err := Init(opts)
	require.NoError(t, err)
	res := f(t, g, json.RawMessage(os.Getenv(argEnv)))
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(os.Getenv(outEnv), fmt.Sprintf("rank%d.json", g.Rank())), b, 0o644))
	// Leave together: rank 0 serves the store, and closing it first would fail the others.
	if res, ok := res.(interface{ skipBarrier() bool }); !ok || !res.skipBarrier() {
		require.NoError(t, g.Barrier())
	}
	require.NoError(t, g.Close())
}

// freePort returns a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// rankProc is one rank subprocess.
type rankProc struct {
	rank    int
	cmd     *exec.Cmd
	out     bytes.Buffer // stdout and stderr
	err     error        // its exit
	elapsed time.Duration
	done    chan struct{}
}

// job is a set of rank subprocesses.
type job struct {
	t     *testing.T
	dir   string
	ranks []*rankProc
}

// startRanks starts world ranks playing role with arg (JSON-encoded) and the group timeout.
func startRanks(t *testing.T, role string, world int, timeout time.Duration, arg any) *job {
	t.Helper()
	a, err := json.Marshal(arg)
	require.NoError(t, err)
	j := &job{t: t, dir: t.TempDir()}
	port := freePort(t)
	for r := 0; r < world; r++ {
		p := &rankProc{rank: r, done: make(chan struct{})}
		p.cmd = exec.Command(os.Args[0], "-test.run=^TestRankProcess$", "-test.count=1", "-test.timeout=5m")
		p.cmd.Env = append(os.Environ(),
			"RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world),
			"LOCAL_RANK="+strconv.Itoa(r), "LOCAL_WORLD_SIZE="+strconv.Itoa(world),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
			roleEnv+"="+role, outEnv+"="+j.dir, timeoutEnv+"="+timeout.String(), argEnv+"="+string(a),
			"OMP_NUM_THREADS=1")
		p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
		start := time.Now()
		require.NoError(t, p.cmd.Start())
		go func() {
			p.err = p.cmd.Wait()
			p.elapsed = time.Since(start)
			close(p.done)
		}()
		j.ranks = append(j.ranks, p)
	}
	t.Cleanup(func() {
		for _, p := range j.ranks {
			select {
			case <-p.done:
			default:
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
	})
	return j
}

// wait waits for the ranks (all unless some are named) and fails the test past limit.
func (j *job) wait(limit time.Duration, ranks ...int) {
	j.t.Helper()
	if len(ranks) == 0 {
		for r := range j.ranks {
			ranks = append(ranks, r)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for _, r := range ranks {
		select {
		case <-j.ranks[r].done:
		case <-ctx.Done():
			j.t.Fatalf("rank %d still running after %v; output so far:\n%s", r, limit, j.ranks[r].out.String())
		}
	}
}

// requireOK checks that the ranks exited 0 and decodes their results into out (a pointer to a
// slice, one element per rank).
func (j *job) requireOK(out any) {
	j.t.Helper()
	for _, p := range j.ranks {
		require.NoError(j.t, p.err, "rank %d failed:\n%s", p.rank, p.out.String())
	}
	j.results(out)
}

// results decodes the result files of the ranks that wrote one into out, a pointer to a slice.
func (j *job) results(out any) {
	j.t.Helper()
	var raws []json.RawMessage
	for _, p := range j.ranks {
		b, err := os.ReadFile(filepath.Join(j.dir, fmt.Sprintf("rank%d.json", p.rank)))
		if err != nil {
			b = []byte("null")
		}
		raws = append(raws, b)
	}
	all, err := json.Marshal(raws)
	require.NoError(j.t, err)
	require.NoError(j.t, json.Unmarshal(all, out))
}

// marker files let a rank tell the test where it is (the test then kills it, say).
func markerPath(rank int, name string) string {
	return filepath.Join(os.Getenv(outEnv), fmt.Sprintf("rank%d.%s", rank, name))
}

func (j *job) waitMarker(rank int, name string, limit time.Duration) {
	j.t.Helper()
	path := filepath.Join(j.dir, fmt.Sprintf("rank%d.%s", rank, name))
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-j.ranks[rank].done:
			j.t.Fatalf("rank %d exited before %s:\n%s", rank, name, j.ranks[rank].out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	j.t.Fatalf("rank %d did not reach %s within %v:\n%s", rank, name, limit, j.ranks[rank].out.String())
}
