package intake_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/intake"
)

// TestNonRegularCommandsFile: a FIFO in place of the commands file must not block Poll (opening
// a FIFO for reading waits for a writer); a device (a symlink to /dev/zero) must not be read
// forever. Both are reported; a regular file in their place is read from its start.
func TestNonRegularCommandsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	tl := intake.NewTailer(p)
	defer tl.Close()
	require.NoError(t, os.WriteFile(p, []byte(`{"op":"enable","id":"a"}`+"\n"), 0o600))
	lines, _ := tl.Poll()
	require.Len(t, lines, 1)

	require.NoError(t, os.Remove(p))
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	done := make(chan []error, 1)
	go func() { _, problems := tl.Poll(); done <- problems }()
	select {
	case problems := <-done:
		require.Len(t, problems, 1)
		require.ErrorContains(t, problems[0], "not a regular file")
	case <-time.After(5 * time.Second):
		for { // unblock it so the test ends
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		<-done
		t.Fatal("Poll blocked on a FIFO")
	}
	require.NoError(t, os.Remove(p))
	if _, err := os.Stat("/dev/zero"); err == nil {
		require.NoError(t, os.Symlink("/dev/zero", p))
		lines, problems := tl.Poll()
		require.Empty(t, lines)
		require.Len(t, problems, 1)
		require.ErrorContains(t, problems[0], "is a symbolic link; refusing to follow it", "never opened, let alone read")
		require.NoError(t, os.Remove(p))
	}
	require.NoError(t, os.WriteFile(p, []byte(`{"op":"disable","id":"a"}`+"\n"), 0o600))
	lines, _ = tl.Poll()
	require.Len(t, lines, 1)
	require.Equal(t, `{"op":"disable","id":"a"}`, string(lines[0].Text))
}

// TestRecreatedBetweenPolls: the commands file removed and written again between two polls,
// as `rm hotcb.commands.jsonl; hotcb cb ...` during a long step does. File systems such as ext4
// give the new file the inode number the old one just freed, so identity by (device, inode)
// alone takes it for the old file and skips as many bytes as were read before: here, the
// whole new command. Every line of the new file must be read.
func TestRecreatedBetweenPolls(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	tl := intake.NewTailer(p)
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
