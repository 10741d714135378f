package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The test binary is the launched program when LAUNCH_TEST_ROLE is set.
func TestMain(m *testing.M) {
	if role := os.Getenv("LAUNCH_TEST_ROLE"); role != "" {
		os.Exit(child(role))
	}
	os.Exit(m.Run())
}

// child: every role prints its environment; "fail1" makes rank 1 fail after the others are
// waiting; "stubborn" ignores SIGTERM; waiting ranks exit 0 on SIGTERM or SIGINT.
func child(role string) int {
	rank := os.Getenv("RANK")
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	if role == "stubborn" {
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT)
	}
	ready(rank) // its signals are set up: the test may fail or stop the ranks from now on
	fmt.Printf("env %s %s %s %s %s\n", rank, os.Getenv("WORLD_SIZE"), os.Getenv("LOCAL_RANK"), os.Getenv("LOCAL_WORLD_SIZE"), os.Getenv("MASTER_ADDR"))
	fmt.Fprintf(os.Stderr, "progress\rstep 1\n")
	switch {
	case role == "ok":
		return 0
	case role == "fail1" && rank == "1":
		waitReady(os.Getenv("LAUNCH_TEST_DIR"), "0", "2")
		fmt.Fprintln(os.Stderr, "error: training step 3: the loss is NaN")
		return 3
	case role == "stubborn":
		if rank == "0" {
			waitReady(os.Getenv("LAUNCH_TEST_DIR"), "1")
			return 1
		}
		time.Sleep(time.Minute)
		return 0
	}
	select {
	case s := <-sigs:
		fmt.Printf("stopping on %v\n", s)
		return 0
	case <-time.After(time.Minute):
		return 9
	}
}

// ready marks this rank's signal handling as set up, in LAUNCH_TEST_DIR.
func ready(rank string) {
	os.WriteFile(filepath.Join(os.Getenv("LAUNCH_TEST_DIR"), "ready."+rank), nil, 0o600)
}

// waitReady waits (up to a minute: a loaded machine starts test binaries slowly) until the ranks
// are ready.
func waitReady(dir string, ranks ...string) {
	for i := 0; i < 6000; i++ {
		n := 0
		for _, r := range ranks {
			if _, err := os.Stat(filepath.Join(dir, "ready."+r)); err == nil {
				n++
			}
		}
		if n == len(ranks) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func launch(t *testing.T, ctx context.Context, role string, n int, grace time.Duration, dir ...string) (string, string, error, time.Duration) {
	var out, errOut lockedBuf
	t0 := time.Now()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	err := Run(ctx, Options{Program: os.Args[0], Args: []string{"-test.run=^$"}, N: n, Env: []string{"LAUNCH_TEST_ROLE=" + role, "LAUNCH_TEST_DIR=" + d},
		Out: &out, Err: &errOut, Grace: grace})
	return out.String(), errOut.String(), err, time.Since(t0)
}

func TestRanksGetTorchrunsEnvironmentAndPrefixedOutput(t *testing.T) {
	out, errOut, err, _ := launch(t, context.Background(), "ok", 3, time.Second)
	require.NoError(t, err)
	for r := 0; r < 3; r++ {
		require.Contains(t, out, fmt.Sprintf("[rank %d] env %d 3 %d 3 127.0.0.1\n", r, r, r))
		require.Contains(t, errOut, fmt.Sprintf("[rank %d] progress\n[rank %d] step 1\n", r, r), "a carriage return ends a line")
	}
}

func TestOneFailingRankStopsTheOthers(t *testing.T) {
	out, _, err, took := launch(t, context.Background(), "fail1", 3, 10*time.Second)
	var re *RankError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, 1, re.Rank)
	require.Equal(t, "error: training step 3: the loss is NaN", re.LastLine)
	require.ErrorContains(t, err, "rank 1 failed: exit status 3: error: training step 3")
	require.Contains(t, out, "[rank 0] stopping on terminated")
	require.Contains(t, out, "[rank 2] stopping on terminated")
	require.Less(t, took, 9*time.Second, "the others stopped on SIGTERM, not after the grace period")
}

func TestRanksThatIgnoreSIGTERMAreKilledAfterTheGrace(t *testing.T) {
	_, _, err, took := launch(t, context.Background(), "stubborn", 2, 300*time.Millisecond)
	var re *RankError
	require.True(t, errors.As(err, &re), "%v", err)
	require.Equal(t, 0, re.Rank)
	require.Less(t, took, 20*time.Second)
}

func TestCancelSendsSIGINT(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	go func() { waitReady(dir, "0", "1"); cancel() }()
	out, _, err, _ := launch(t, ctx, "wait", 2, 10*time.Second, dir)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 2, strings.Count(out, "stopping on interrupt"), out)
}

func TestBadOptions(t *testing.T) {
	require.ErrorContains(t, Run(context.Background(), Options{Program: os.Args[0], N: 0}), "0 ranks")
	require.ErrorContains(t, Run(context.Background(), Options{Program: os.Args[0], N: 1, Nodes: 2, NodeRank: 2}), "node rank 2 of 2")
	err := Run(context.Background(), Options{Program: "/nonexistent/hotcb-torch", N: 2})
	require.ErrorContains(t, err, "start rank 0 (/nonexistent/hotcb-torch)")
}

func TestStripFlag(t *testing.T) {
	require.Equal(t, []string{"--dir", "d", "train", "--steps", "5"}, StripFlag([]string{"--dir", "d", "train", "--nproc", "2", "--steps", "5"}, "nproc"))
	require.Equal(t, []string{"train"}, StripFlag([]string{"train", "--nproc=3"}, "nproc"))
	require.Equal(t, []string{"train", "--", "--nproc", "2"}, StripFlag([]string{"train", "--", "--nproc", "2"}, "nproc"))
}
