// Package torchpy runs Python scripts against PyTorch from Go tests, for the cross-checks that
// compare hotcb with the real thing.
//
// The interpreter is Debian's /usr/bin/python3, where python3-torch installs torch (the same
// libtorch build the shim links); set HOTCB_PYTHON to use another one. When that interpreter
// cannot import torch, the test is skipped with the reason and a hint to run `make deps`, which
// installs python3-torch, so CI always runs these cross-checks and never skips them.
//
// Scripts run with "python -c script args...":
//
//	py := torchpy.Interpreter(t)            // the path, or skip
//	out := torchpy.Run(t, script, a, b)     // combined output; fails showing it
//	torchpy.RunJSON(t, script, in, &res)    // in as JSON on stdin, stdout decoded into res
//
// This package is for tests only and imports nothing of hotcb.
package torchpy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// DefaultPython is the interpreter used unless HOTCB_PYTHON names another.
const DefaultPython = "/usr/bin/python3"

var (
	mu     sync.Mutex
	probed = map[string]string{} // interpreter -> why it cannot import torch ("" when it can)
)

// Interpreter returns the Python interpreter that imports torch, or skips the test saying why.
// The check runs once per interpreter and test binary.
func Interpreter(t testing.TB) string {
	t.Helper()
	py := DefaultPython
	if v := os.Getenv("HOTCB_PYTHON"); v != "" {
		py = v
	}
	mu.Lock()
	why, ok := probed[py]
	if !ok {
		if out, err := exec.Command(py, "-c", "import torch").CombinedOutput(); err != nil {
			why = fmt.Sprintf("%s cannot import torch (%v: %s)", py, err, strings.TrimSpace(string(out)))
		}
		probed[py] = why
	}
	mu.Unlock()
	if why != "" {
		t.Skipf("cross-check with PyTorch skipped: %s; run `make deps` to install python3-torch", why)
	}
	return py
}

// Run runs script with args and returns its combined stdout and stderr; it fails the test,
// showing that output, if the script fails.
func Run(t testing.TB, script string, args ...string) string {
	t.Helper()
	out, err := exec.Command(Interpreter(t), append([]string{"-c", script}, args...)...).CombinedOutput()
	require.NoError(t, err, "python failed:\n%s", out)
	return string(out)
}

// RunJSON runs script with in encoded as JSON on its stdin and decodes its stdout (JSON) into
// out. Stderr (PyTorch's warnings) is shown only if the script fails.
func RunJSON(t testing.TB, script string, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	require.NoError(t, err)
	cmd := exec.Command(Interpreter(t), "-c", script)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	require.NoError(t, err, "python failed:\n%s", stderr.String())
	require.NoError(t, json.Unmarshal(stdout, out), "python output: %s", stdout)
}
