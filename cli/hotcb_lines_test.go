package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestWritesHotcbsBytes types the commands of hotcb's own CLI transcript (testdata copied from
// what sidphbot/hotcb's `python -m hotcb` wrote) into this CLI and compares the lines appended to
// hotcb.commands.jsonl with the lines hotcb appended, byte for byte. Two differences are ours on
// purpose, and checked as such: `--file` is written as the absolute path that was checked (the
// training process may run in another directory), and `lr=1e-3` is the number 0.001, where hotcb's
// parser, which makes floats only of values with a ".", writes the string "1e-3".
func TestWritesHotcbsBytes(t *testing.T) {
	ref := filepath.Join("..", "kernel", "testdata", "hotcb-python")
	transcript, err := os.ReadFile(filepath.Join(ref, "cli-transcript.txt"))
	require.NoError(t, err)
	want, err := os.ReadFile(filepath.Join(ref, "cli-commands.jsonl"))
	require.NoError(t, err)

	dir := newRunDir(t)
	work := t.TempDir() // the transcript's working directory, holding callbacks/feat_viz.go
	feat := filepath.Join(work, "callbacks", "feat_viz.go")
	require.NoError(t, os.MkdirAll(filepath.Dir(feat), 0o700))
	require.NoError(t, os.WriteFile(feat, []byte("package cb\n"), 0o600))
	t.Chdir(work)
	typed := 0
	for _, l := range strings.Split(string(transcript), "\n") {
		args, ok := strings.CutPrefix(l, "$ hotcb --dir run ")
		if !ok || strings.HasPrefix(args, "freeze") { // freeze writes hotcb.freeze.json, not a line
			continue
		}
		mustRun(t, append([]string{"--dir", dir}, strings.Fields(args)...)...)
		typed++
	}
	require.Equal(t, 9, typed)

	got := strings.Split(strings.TrimSuffix(commandsOf(t, dir), "\n"), "\n")
	exp := strings.Split(strings.TrimSuffix(string(want), "\n"), "\n")
	require.Len(t, got, len(exp))
	for i := range exp {
		g := strings.Replace(got[i], `"path": "`+feat+`"`, `"path": "callbacks/feat_viz.go"`, 1)
		if strings.Contains(exp[i], `"lr": "1e-3"`) {
			require.Equal(t, strings.Replace(exp[i], `"1e-3"`, `0.001`, 1), g, "line %d", i+1)
			continue
		}
		require.Equal(t, exp[i], g, "line %d", i+1)
	}
	require.Contains(t, got[1], `"path": "`+feat+`"`)
}
