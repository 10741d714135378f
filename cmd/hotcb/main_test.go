package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBinary builds hotcb and checks what only the binary does: exit statuses, one-line errors
// on stderr, and that SIGINT ends `ledger -f` cleanly.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "hotcb")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())

	run := func(args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		c := exec.Command(bin, args...)
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errOut.String(), ee.ExitCode()
		}
		require.NoError(t, err)
		return out.String(), errOut.String(), 0
	}

	out, _, code := run("--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "Available Commands:")

	out, _, code = run("version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "libtorch: ")

	_, errOut, code := run("bogus")
	require.Equal(t, 2, code)
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
	require.True(t, strings.HasPrefix(errOut, `hotcb: unknown command "bogus" for "hotcb"`), errOut)

	dir := filepath.Join(tmp, "run")
	_, _, code = run("--dir", dir, "init")
	require.Equal(t, 0, code)
	cfg, err := os.ReadFile(filepath.Join(dir, "hotcb.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(cfg), "TimingCallback", "the binary registers the built-ins")

	_, errOut, code = run("--dir", dir, "cb", "load", "t", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "Nope")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "that path has: TimingCallback")

	_, _, code = run("--dir", dir, "cb", "load", "t", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "TimingCallback", "--init", "every=5")
	require.Equal(t, 0, code)
	b, err := os.ReadFile(filepath.Join(dir, "hotcb.commands.jsonl"))
	require.NoError(t, err)
	require.Equal(t, `{"module":"cb","op":"load","id":"t","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":5}}`+"\n", string(b))

	_, errOut, code = run("--dir", dir, "recipe", "export")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no applied ledger")

	// ledger -f runs until SIGINT, then exits 0.
	fout := &lockedBuffer{}
	follow := exec.Command(bin, "--dir", dir, "ledger", "-f")
	follow.Stdout = fout
	require.NoError(t, follow.Start())
	// The header is printed once the command runs, after the signal handler is installed.
	require.Eventually(t, func() bool { return strings.Contains(fout.String(), "SEQ") }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, follow.Process.Signal(syscall.SIGINT))
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "exit status after SIGINT")
	case <-time.After(10 * time.Second):
		_ = follow.Process.Kill()
		t.Fatal("ledger -f did not stop on SIGINT")
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
