package controller_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
)

// TestRecreatedBetweenPolls: the commands file removed and written again between two polls,
// as `rm hotcb.commands.jsonl; hotcb cb ...` during a long step does. File systems such as ext4
// give the new file the inode number the old one just freed, so identity by (device, inode)
// alone takes it for the old file and skips as many bytes as were read before: here, the
// whole new command. Every line of the new file must be read.
func TestRecreatedBetweenPolls(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	tl := controller.NewTailer(p)
	defer tl.Close()
	first := `{"op":"set_params","id":"a","params":{"n":1}}` + "\n"
	second := `{"op":"set_params","id":"a","params":{"n":2}}` + "\n" // same length
	third := `{"op":"set_params","id":"a","params":{"n":3}}` + "\n" + `{"op":"enable","id":"a"}` + "\n"
	require.NoError(t, os.WriteFile(p, []byte(first), 0o600))
	lines, _ := tl.Poll()
	require.Len(t, lines, 1)
	for _, content := range []string{second, third} {
		require.NoError(t, os.Remove(p))
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		lines, problems := tl.Poll()
		var got []string
		for _, l := range lines {
			got = append(got, string(l.Text)+"\n")
		}
		require.Equal(t, content, strings.Join(got, ""), "every line of the new file (problems: %v)", problems)
	}
}
