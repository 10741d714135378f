package intake_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/intake"
	"github.com/hotcb/hotcb/ops"
)

// changes polls f once and returns what it handed on, rejecting contents that start with "bad".
func changes(f *intake.File) []string {
	var got []string
	f.Poll(func(ch intake.Change) error {
		switch {
		case ch.Err != nil:
			got = append(got, "problem: "+ch.Err.Error())
		case ch.Removed:
			got = append(got, "removed")
		case strings.HasPrefix(string(ch.Data), "bad"):
			got = append(got, "rejected "+string(ch.Data))
			return fmt.Errorf("bad")
		default:
			got = append(got, "content "+string(ch.Data))
		}
		return nil
	})
	return got
}

// A control file is handed on when its content changes, once per bad content and once per read
// problem (a FIFO, a directory), never blocking on a FIFO; a removal counts only where asked.
func TestFileHandsOnChangesAndProblemsOnce(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.freeze.json")
	write := func(s string) { require.NoError(t, os.WriteFile(p, []byte(s), 0o600)) }
	f := intake.NewFile(p, true)
	require.Empty(t, changes(f), "no file, nothing accepted yet: no change")
	write("a")
	require.Equal(t, []string{"content a"}, changes(f))
	require.Empty(t, changes(f), "same content")
	write("bad1")
	require.Equal(t, []string{"rejected bad1"}, changes(f))
	require.Empty(t, changes(f), "a rejected content is handed on once")

	require.NoError(t, os.Remove(p))
	require.NoError(t, syscall.Mkfifo(p, 0o600))
	done := make(chan []string, 1)
	go func() { done <- append(changes(f), changes(f)...) }()
	select {
	case got := <-done:
		require.Len(t, got, 1, "reported once: %v", got)
		require.Contains(t, got[0], "is not a regular file")
	case <-time.After(5 * time.Second):
		if w, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatal("Poll blocked on a FIFO")
	}
	require.NoError(t, os.Remove(p))
	require.NoError(t, os.Mkdir(p, 0o700))
	require.Len(t, changes(f), 1, "a new problem is reported")
	require.Empty(t, changes(f))
	require.NoError(t, os.Remove(p))

	require.Equal(t, []string{"removed"}, changes(f), "the removal of an accepted content counts")
	require.Empty(t, changes(f))
	write("a")
	require.Equal(t, []string{"content a"}, changes(f), "the same content again after the removal is a change")

	g := intake.NewFile(filepath.Join(dir, "hotcb.yaml"), false)
	require.NoError(t, os.WriteFile(g.Path(), []byte("x"), 0o600))
	require.Equal(t, []string{"content x"}, changes(g))
	require.NoError(t, os.Remove(g.Path()))
	require.Empty(t, changes(g), "without removal, a removed file changes nothing")
	require.NoError(t, os.WriteFile(g.Path(), []byte("x"), 0o600))
	require.Empty(t, changes(g), "and the same content back is no change")
}

// Lines that are not ops come back in file order with their reason, what could be made out of
// them and their start; the first MaxBadPerPoll of a poll one by one, the rest as a count. All
// are counted, and the end position is after the last line, good or bad.
func TestBadCommandLines(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	text := "not json\n" +
		`{"op":"frobnicate","id":"seq"}` + "\n" +
		`{"module":"opt","op":"set_params","params":"lr=1"}` + "\n" +
		`{"op":"enable","id":"a"}` + "\n"
	require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
	r := intake.NewCommandReader(p)
	defer r.Close()
	var log []string
	c := r.Poll(func(s string) { log = append(log, s) })
	require.Len(t, c.Lines, 4)
	require.ErrorContains(t, c.Lines[0].Err, "not a JSON object")
	require.Equal(t, ops.Op{}, c.Lines[0].Op, "not JSON: nothing made out of it")
	require.Equal(t, "not json", c.Lines[0].Text)
	require.ErrorContains(t, c.Lines[1].Err, `unknown cb op "frobnicate"`)
	require.Equal(t, ops.Op{Module: "cb", Op: "frobnicate", ID: "seq"}, c.Lines[1].Op)
	require.Equal(t, ops.Op{Module: "opt", Op: "set_params"}, c.Lines[2].Op)
	require.NoError(t, c.Lines[3].Err)
	require.Equal(t, "enable", c.Lines[3].Op.Op)
	require.Equal(t, 3, r.BadLines())
	require.Len(t, log, 3)
	require.Equal(t, int64(len(text)), c.End.End)
	require.Equal(t, 4, c.End.Number)

	var flood strings.Builder
	for i := 0; i < 25; i++ {
		flood.WriteString("garbage\n")
	}
	flood.WriteString(`{"op":"disable","id":"a"}` + "\n")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(flood.String())
	require.NoError(t, err)
	require.NoError(t, f.Close())
	c = r.Poll(func(string) {})
	require.Len(t, c.Lines, intake.MaxBadPerPoll+1, "ten bad lines one by one, and the op")
	require.Equal(t, 15, c.Unlisted)
	require.Equal(t, 5+intake.MaxBadPerPoll, c.FirstUnlisted)
	require.Equal(t, 29, c.LastUnlisted)
	require.Equal(t, "disable", c.Lines[intake.MaxBadPerPoll].Op.Op, "the op after the flood is not held back")
	require.Equal(t, 30, c.End.Number)
	require.Equal(t, 3+25, r.BadLines())
}

// A line over the limit comes back as a bad line at its newline, once, also when it spans
// several polls; a reader resumed after it goes on with the next line.
func TestOverLongLineIsOneBadLineAndResumable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	defer f.Close()
	r := intake.NewCommandReader(p)
	defer r.Close()
	var log []string
	add := func(s string) { log = append(log, s) }
	_, err = f.WriteString(`{"op":"enable","id":"a"}` + "\n" + strings.Repeat("x", 3<<20))
	require.NoError(t, err)
	c := r.Poll(add)
	require.Len(t, c.Lines, 1, "the long line is not complete yet")
	_, err = f.WriteString(strings.Repeat("y", 1<<20) + "\n" + `{"op":"disable","id":"a"}` + "\n")
	require.NoError(t, err)
	c = r.Poll(add)
	require.Len(t, c.Lines, 2)
	require.ErrorContains(t, c.Lines[0].Err, "longer than 1048576 bytes")
	require.Equal(t, 2, c.Lines[0].At.Number)
	require.Empty(t, c.Lines[0].Text, "no excerpt of it")
	require.Equal(t, 1, r.BadLines())
	require.Len(t, log, 1)
	require.Contains(t, log[0], "line 2 is longer than 1048576 bytes; skipped")

	again := intake.NewCommandReader(p)
	defer again.Close()
	again.Tailer().ResumeAfter(c.Lines[0].At)
	c2 := again.Poll(add)
	require.Len(t, c2.Lines, 1, "resumed after the long line: %v", log)
	require.Equal(t, "disable", c2.Lines[0].Op.Op)
}

// Due says when to read: at the first safe point, after a Submit or Wake, at every safe point
// with PollEveryStep, at most every DebounceSteps; a poll cut short by its budget asks for the
// next safe point.
func TestDue(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	var lines strings.Builder
	for i := 0; i < 5000; i++ {
		lines.WriteString(`{"op":"enable","id":"a"}` + "\n")
	}
	require.NoError(t, os.WriteFile(p, []byte(lines.String()), 0o600))
	in := intake.New(intake.Options{Commands: p, PollInterval: time.Hour})
	defer in.Close()
	require.True(t, in.Due(), "the first safe point reads what is there")
	c := in.PollCommands(func(string) {})
	require.True(t, c.More)
	require.Len(t, c.Lines, 4096)
	require.True(t, in.Due(), "the rest at the next safe point")
	require.Len(t, in.PollCommands(func(string) {}).Lines, 5000-4096)
	require.False(t, in.Due())
	in.Submit(ops.Op{Op: "enable", ID: "a"})
	require.True(t, in.Due())
	require.Equal(t, []ops.Op{{Op: "enable", ID: "a"}}, in.Submitted())
	require.Empty(t, in.Submitted())
	require.False(t, in.Due())
	in.Wake()
	require.True(t, in.Due())

	every := intake.New(intake.Options{PollEveryStep: true, DebounceSteps: 3})
	defer every.Close()
	var due []bool
	for i := 0; i < 6; i++ {
		due = append(due, every.Due())
	}
	require.Equal(t, []bool{false, false, true, false, false, true}, due)
}

// A file the intake reads, changed on disk, makes it pending through inotify (no tick within the
// test), and so does a watched go_file source.
func TestNotificationsMakeItPending(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "cb.go")
	in := intake.New(intake.Options{Config: filepath.Join(dir, "hotcb.yaml"), PollInterval: time.Hour})
	defer in.Close()
	in.Watch(src)
	require.True(t, in.Due())
	for _, p := range []string{filepath.Join(dir, "hotcb.yaml"), src} {
		require.False(t, in.Due())
		require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
		deadline := time.Now().Add(5 * time.Second)
		for !in.Due() {
			require.True(t, time.Now().Before(deadline), "no notification for %s", p)
			time.Sleep(time.Millisecond)
		}
	}
}
