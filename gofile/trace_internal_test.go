package gofile

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// The interpreter's standard error is the tracer: its panic prints are taken, the interpreted
// code's own output (package log) goes on.
func TestTracerPassesOutputThrough(t *testing.T) {
	var out bytes.Buffer
	tr := newTracer("/x/cb.go")
	tr.out = &out
	for _, s := range []string{
		"2024/01/01 12:00:00 hello\n",
		"a line that says: panic: but is not the interpreter's\n",
	} {
		n, err := tr.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	for _, s := range []string{"/x/cb.go:3:2: panic: pk.Handle(...)\n", "2:1: panic: main.hotcbRun(...)\n"} {
		n, err := tr.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Equal(t, "2024/01/01 12:00:00 hello\na line that says: panic: but is not the interpreter's\n", out.String())
}
