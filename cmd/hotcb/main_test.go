package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
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

// TestNoLibtorch: hotcb links neither the bridge nor any package that needs cgo, so it never
// loads libtorch and starts in milliseconds. The standard library's net (pflag imports it) may use
// cgo for its DNS resolver; that is only libc, and CGO_ENABLED=0 builds hotcb without it (TestBinary).
func TestNoLibtorch(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}} {{len .CgoFiles}}", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		require.Len(t, f, 3, line)
		pkg, std, cgo := f[0], f[1] == "true", f[2] != "0"
		require.NotEqual(t, "github.com/hotcb/hotcb/bridge", pkg, "hotcb must not link the bridge (libtorch)")
		require.False(t, cgo && !std, "%s imports \"C\": hotcb must be pure Go", pkg)
		if strings.HasPrefix(pkg, "github.com/hotcb/hotcb/") {
			n++
		}
	}
	require.Positive(t, n, "go list saw the module's packages")
}

// TestBinary builds hotcb without cgo (so it is static: no shared library at all, libtorch least
// of all) and checks what only the binary does: exit statuses, one-line errors on stderr, that
// SIGINT ends `ledger -f` cleanly, and the hand-off of train to hotcb-torch.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "hotcb")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	f, err := elf.Open(bin)
	require.NoError(t, err)
	libs, err := f.ImportedLibraries()
	f.Close()
	require.NoError(t, err)
	require.Empty(t, libs, "DT_NEEDED of hotcb")

	// Nothing to hand off to unless a test says so.
	noTorch := []string{"HOTCB_TORCH=", "PATH=" + t.TempDir()}
	runEnv := func(env []string, args ...string) (string, string, int) {
		t.Helper()
		var out, errOut bytes.Buffer
		c := exec.Command(bin, args...)
		c.Env = append(os.Environ(), env...)
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errOut.String(), ee.ExitCode()
		}
		require.NoError(t, err)
		return out.String(), errOut.String(), 0
	}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runEnv(noTorch, args...)
	}

	out, _, code := run("--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "Available Commands:")

	out, _, code = run("version")
	require.Equal(t, 0, code)
	require.Contains(t, out, "libtorch: not linked into hotcb")

	// train --help is hotcb's own; train itself is hotcb-torch's.
	out, _, code = run("train", "--help")
	require.Equal(t, 0, code)
	require.Contains(t, out, "--steps int")
	_, errOut, code := run("--dir", tmp, "train", "--steps", "5")
	require.Equal(t, 1, code)
	require.Equal(t, "hotcb: train needs libtorch, which hotcb does not link, and hotcb-torch was not found: not in "+tmp+
		", not on PATH, and $HOTCB_TORCH is unset (hint: 'make build' builds both bin/hotcb and bin/hotcb-torch; "+
		"install hotcb-torch next to hotcb or on PATH, or set HOTCB_TORCH to its path)\n", errOut)
	_, errOut, code = runEnv([]string{"HOTCB_TORCH=" + bin}, "train")
	require.Equal(t, 1, code, "HOTCB_TORCH naming hotcb does not loop")
	require.Contains(t, errOut, "handed it to "+bin+", which does not link libtorch either")

	// The hand-off: the same process (signals and the exit status go straight through) with the
	// same arguments, flags before the command included, and stdin, stdout and stderr.
	fake := filepath.Join(tmp, "fake-torch")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho \"pid $$\"\nfor a in \"$0\" \"$@\"; do echo \"[$a]\"; done\necho oops >&2\nexit 7\n"), 0o700))
	var hout, herr bytes.Buffer
	c := exec.Command(bin, "--dir", "runs/x y", "train", "--steps", "5", "--device=cpu")
	c.Env = append(os.Environ(), "HOTCB_TORCH="+fake)
	c.Stdout, c.Stderr = &hout, &herr
	require.NoError(t, c.Start())
	err = c.Wait()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 7, ee.ExitCode())
	require.Equal(t, fmt.Sprintf("pid %d\n[%s]\n[--dir]\n[runs/x y]\n[train]\n[--steps]\n[5]\n[--device=cpu]\n", c.Process.Pid, fake), hout.String())
	require.Equal(t, "oops\n", herr.String())
	out, _, code = runEnv([]string{"HOTCB_TORCH=" + fake}, "version", "--libtorch")
	require.Equal(t, 7, code)
	require.Contains(t, out, "[version]\n[--libtorch]\n")
	// Next to hotcb, when HOTCB_TORCH is unset.
	require.NoError(t, os.Rename(fake, filepath.Join(tmp, "hotcb-torch")))
	out, _, code = run("train")
	require.Equal(t, 7, code)
	require.Contains(t, out, "[train]\n")

	_, errOut, code = run("bogus")
	require.Equal(t, 2, code)
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)
	require.True(t, strings.HasPrefix(errOut, `hotcb: unknown command "bogus" for "hotcb"`), errOut)

	dir := filepath.Join(tmp, "run")
	_, _, code = run("--dir", dir, "init")
	require.Equal(t, 0, code)
	cfg, err := os.ReadFile(filepath.Join(dir, "hotcb.yaml"))
	require.NoError(t, err)
	require.Contains(t, string(cfg), "TimingCallback", "the built-ins, from the table: hotcb links none")

	_, errOut, code = run("--dir", dir, "cb", "load", "t", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "Nope")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "that path has: TimingCallback")

	_, _, code = run("--dir", dir, "cb", "load", "t", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "TimingCallback", "--init", "every=5")
	require.Equal(t, 0, code)
	b, err := os.ReadFile(filepath.Join(dir, "hotcb.commands.jsonl"))
	require.NoError(t, err)
	require.Equal(t, `{"module": "cb", "op": "load", "id": "t", "target": {"kind": "module", "path": "hotcb.modules.cb.callbacks.timing", "symbol": "TimingCallback"}, "init": {"every": 5}}`+"\n", string(b))

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
