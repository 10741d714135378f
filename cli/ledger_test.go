package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
)

// ledgerLine is a ledger entry as the kernel writes it, at testNow + seq seconds.
func ledgerLine(seq, step int, module, op, id, decision, payload, errMsg string) string {
	idJSON, errJSON := "null", "null"
	if id != "" {
		idJSON = quote(id)
	}
	if errMsg != "" {
		errJSON = quote(errMsg)
	}
	return fmt.Sprintf(`{"seq":%d,"wall_time":%d.25,"step":%d,"epoch":0,"event":"train_step_end","phase":"train","module":%q,"op":%q,"id":%s,"source":"external","decision":%q,"payload":%s,"error":%s,"notes":null}`,
		seq, testNow.Unix()+int64(seq), step, module, op, idJSON, decision, payload, errJSON) + "\n"
}

func ledgerFixture() string {
	return ledgerLine(1, 10, "cb", "load", "timing", "applied", `{"target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":50}}`, "") +
		ledgerLine(2, 20, "cb", "set_params", "timing", "failed", `{"params":{"every":"x"}}`, "every: want an integer,\ngot \"x\"") +
		ledgerLine(3, 1200, "opt", "set_params", "main", "applied", `{"params":{"lr":0.001}}`, "") +
		ledgerLine(4, 1300, "core", "freeze", "", "applied", `{"mode":"prod"}`, "") +
		ledgerLine(5, 1400, "cb", "enable", "x", "ignored_freeze", `{}`, "") +
		"{this line was cut by a crash\n" +
		ledgerLine(6, 1500, "cb", "disable", "timing", "applied", `{}`, "")
}

func TestLedger(t *testing.T) {
	dir := newRunDir(t)
	r := runCLI(t, "--dir", dir, "ledger")
	require.NoError(t, r.err)
	require.Equal(t, "no ledger yet: no training process has written "+filepath.Join(dir, rundir.Applied)+"\n", r.out)

	writeFile(t, filepath.Join(dir, rundir.Applied), ledgerFixture())
	r = runCLI(t, "--dir", dir, "log")
	require.NoError(t, r.err)
	require.Equal(t, `   SEQ  TIME         STEP  MODULE  OP          ID              DECISION        SOURCE    DETAIL
     1  12:00:01       10  cb      load        timing          applied         external  module:hotcb.modules.cb.callbacks.timing#TimingCallback init {"every":50}
     2  12:00:02       20  cb      set_params  timing          failed          external  error: every: want an integer,; got "x" params {"every":"x"}
     3  12:00:03     1200  opt     set_params  main            applied         external  params {"lr":0.001}
     4  12:00:04     1300  core    freeze      -               applied         external  mode "prod"
     5  12:00:05     1400  cb      enable      x               ignored_freeze  external
     6  12:00:06     1500  cb      disable     timing          applied         external
`, r.out)
	require.Contains(t, r.errOut, "skipped an unreadable ledger line")

	r = runCLI(t, "--dir", dir, "ledger", "--tail", "2")
	require.NoError(t, r.err)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	require.Len(t, lines, 2, r.out) // the header and seq 6: the cut line counts as one of the 2
	require.Contains(t, lines[1], "disable")

	r = runCLI(t, "--dir", dir, "ledger", "-n", "3", "--json")
	require.NoError(t, r.err)
	all := strings.SplitAfter(ledgerFixture(), "\n")
	require.Equal(t, all[4]+all[5]+all[6], r.out, "as stored")
}

func TestLedgerFollow(t *testing.T) {
	dir := newRunDir(t)
	path := filepath.Join(dir, rundir.Applied)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errOut := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		root := newRoot(&app{out: out, errOut: errOut, now: time.Now, loc: time.UTC, poll: 5 * time.Millisecond})
		root.SetArgs([]string{"--dir", dir, "ledger", "-f"})
		done <- root.ExecuteContext(ctx)
	}()
	has := func(s string) func() bool { return func() bool { return strings.Contains(out.String(), s) } }
	require.Eventually(t, has("SEQ"), 5*time.Second, 5*time.Millisecond) // the file does not exist yet

	require.NoError(t, rundir.AppendLine(path, []byte(strings.TrimSpace(ledgerLine(1, 10, "cb", "enable", "a", "applied", "{}", "")))))
	require.Eventually(t, has("enable      a "), 5*time.Second, 5*time.Millisecond)

	// A line being written waits for its newline.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	line := ledgerLine(2, 20, "cb", "disable", "b", "applied", "{}", "")
	_, err = f.WriteString(line[:40])
	require.NoError(t, err)
	time.Sleep(50 * time.Millisecond)
	require.NotContains(t, out.String(), "disable")
	_, err = f.WriteString(line[40:])
	require.NoError(t, err)
	require.NoError(t, f.Close())
	require.Eventually(t, has("disable     b "), 5*time.Second, 5*time.Millisecond)

	// A replaced (shorter) file is read from its start.
	require.NoError(t, os.WriteFile(path+".new", []byte(ledgerLine(1, 1, "cb", "unload", "c", "applied", "{}", "")), 0o600))
	require.NoError(t, os.Rename(path+".new", path))
	require.Eventually(t, has("unload      c "), 5*time.Second, 5*time.Millisecond)
	require.Contains(t, errOut.String(), "truncated or replaced")

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("ledger -f did not stop on cancel")
	}
	require.Equal(t, 1, strings.Count(out.String(), "SEQ"))
}

func TestLineReaderTail(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.jsonl")
	read := func(n int) []string {
		r := &lineReader{path: p}
		require.NoError(t, r.seekTail(n))
		lines, _, err := r.next()
		require.NoError(t, err)
		var out []string
		for _, l := range lines {
			out = append(out, string(l))
		}
		return out
	}
	writeFile(t, p, "a\nb\nc\nd\npartial")
	require.Equal(t, []string{"c", "d"}, read(2))
	require.Equal(t, []string{"a", "b", "c", "d"}, read(0))
	require.Equal(t, []string{"a", "b", "c", "d"}, read(10))
	require.Equal(t, []string{"d"}, read(1))
	writeFile(t, p, "only partial")
	require.Empty(t, read(3))
	// Lines longer than the read chunk.
	long := strings.Repeat("x", 100<<10)
	writeFile(t, p, long+"\n"+long+"\nshort\n")
	got := read(2)
	require.Len(t, got, 2)
	require.Equal(t, long, got[0])
	require.Equal(t, "short", got[1])
}
