package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/hotcb/hotcb/callbacks/all" // TestBuiltinsTable checks the table against them; TestConfigTemplate loads them
	"github.com/hotcb/hotcb/rundir"
)

// TestMain doubles as the writer process of TestConcurrentProcesses: with HOTCB_CLI_HELPER_DIR
// set, the test binary appends HOTCB_CLI_HELPER_N commands through Run and exits.
func TestMain(m *testing.M) {
	if dir := os.Getenv("HOTCB_CLI_HELPER_DIR"); dir != "" {
		n, _ := strconv.Atoi(os.Getenv("HOTCB_CLI_HELPER_N"))
		tag := os.Getenv("HOTCB_CLI_HELPER_TAG")
		var sink bytes.Buffer
		for i := 0; i < n; i++ {
			sink.Reset()
			args := []string{"--dir", dir, "cb", "set_params", tag, "i=" + strconv.Itoa(i), "pad=" + string(bytes.Repeat([]byte("x"), 200))}
			if code := Run(context.Background(), args, &sink, os.Stderr); code != 0 {
				fmt.Fprintf(os.Stderr, "helper: exit %d\n", code)
				os.Exit(3)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer that `ledger -f` can write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testNow is the clock of the fixture tests.
var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

type result struct {
	out, errOut string
	err         error
}

// runCLI executes hotcb in-process with the real clock.
func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	return runCLIWith(context.Background(), time.Now, args...)
}

// runAt executes hotcb with the clock stopped at now.
func runAt(t *testing.T, now time.Time, args ...string) result {
	t.Helper()
	return runCLIWith(context.Background(), func() time.Time { return now }, args...)
}

func runCLIWith(ctx context.Context, now func() time.Time, args ...string) result {
	return execute(ctx, &app{now: now}, args...)
}

// runWith executes hotcb with a's torch and handoff (no Torch, and no hand-off: an error, when
// nil) and the real clock.
func runWith(t *testing.T, a *app, args ...string) result {
	t.Helper()
	return execute(context.Background(), a, args...)
}

func execute(ctx context.Context, a *app, args ...string) result {
	var out, errOut bytes.Buffer
	a.out, a.errOut, a.loc, a.poll, a.args = &out, &errOut, time.UTC, 5*time.Millisecond, args
	if a.now == nil {
		a.now = time.Now
	}
	root := newRoot(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return result{out.String(), errOut.String(), err}
}

// mustRun executes hotcb and fails the test on an error.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	r := runCLI(t, args...)
	require.NoError(t, r.err, "hotcb %v\nstdout: %s\nstderr: %s", args, r.out, r.errOut)
	return r.out
}

// newRunDir is an initialised run directory.
func newRunDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	mustRun(t, "--dir", dir, "init")
	return dir
}

func commandsOf(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, rundir.Commands))
	require.NoError(t, err)
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
}
