package kernel_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
)

// A line of the commands file that is not an op is recorded as hotcb records input it does not
// act on (decision ignored, the reason in notes, no error), counted in the status, and consumed:
// a restart does not record it again, and records a new one once.
func TestBadCommandLinesAreIgnoredInTheLedgerOnce(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadP, "not json", `{"op":"frobnicate","id":"hb"}`)
	p.steps(1)
	p.k.Controller().RequestStatus()
	p.steps(1)
	require.Equal(t, 2, p.k.Controller().Status().BadLines)
	p.stop()
	es := readLedger(t, dir)
	require.Equal(t, []string{
		"0 cb.load(hb) external applied",
		"0 .() external ignored",
		"0 cb.frobnicate(hb) external ignored",
	}, summary(es))
	notJSON, frob := es[1], es[2]
	require.Equal(t, "line 2 is not an op: not a JSON object", *notJSON.Notes)
	require.Nil(t, notJSON.Error)
	require.Equal(t, map[string]any{"line": int64(2), "text": "not json"}, notJSON.Payload)
	require.Contains(t, *frob.Notes, `line 3 is not an op: unknown cb op "frobnicate"`)
	require.Equal(t, 3, frob.Cursor.CommandsLine, "the bad line is consumed")

	p = start(t, dir, kernel.Options{})
	p.steps(2)
	p.stop()
	appendCmd(t, dir, `{"op":"enable"}`)
	p = start(t, dir, kernel.Options{})
	p.steps(2)
	p.stop()
	require.Equal(t, []string{
		"0 cb.load(hb) external applied",
		"0 .() external ignored",
		"0 cb.frobnicate(hb) external ignored",
		"0 cb.load(hb) restore applied",
		"0 cb.load(hb) restore applied",
		"0 cb.enable() external ignored",
	}, summary(readLedger(t, dir)), "each bad line once, across restarts")
}

// A flood of bad lines costs one safe point a bounded number of ledger entries: the first ten
// one by one, the rest of the poll in one entry that counts them. The op after them applies at
// once, and a restart records none of them again.
func TestBadLineFloodIsSummedUpPerSafePoint(t *testing.T) {
	dir := t.TempDir()
	lines := make([]string, 0, 31)
	for i := 0; i < 30; i++ {
		lines = append(lines, fmt.Sprintf("garbage %d", i))
	}
	appendCmd(t, dir, append(lines, loadP)...)
	p := start(t, dir, kernel.Options{})
	p.steps(1)
	p.stop()
	es := readLedger(t, dir)
	require.Len(t, es, 10+1+1)
	for _, e := range es[:10] {
		require.Equal(t, rundir.DecisionIgnored, e.Decision)
	}
	require.Equal(t, "0 cb.load(hb) external applied", summary(es)[10])
	sum := es[11]
	require.Equal(t, rundir.DecisionIgnored, sum.Decision)
	require.Equal(t, map[string]any{"line": int64(11), "last_line": int64(30), "count": int64(20)}, sum.Payload)
	require.Contains(t, *sum.Notes, "20 more lines that are not ops (lines 11 to 30)")
	require.Equal(t, 31, sum.Cursor.CommandsLine)

	p = start(t, dir, kernel.Options{})
	p.steps(1)
	p.stop()
	require.Len(t, readLedger(t, dir), 13, "only the restore")
}

// hotcb.freeze.json naming a recipe that is a FIFO: switching to replay reads the recipe at the
// safe point, and must not wait for a writer. The freeze file stays in force until it changes,
// and the problem is reported once.
func TestReplayRecipeFIFODoesNotBlock(t *testing.T) {
	dir := t.TempDir()
	r := newRun(t, dir)
	log := &logged{}
	r.env.Log = log.add
	fifo := filepath.Join(dir, "recipe.jsonl")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Freeze), []byte(`{"mode":"replay","recipe_path":"recipe.jsonl"}`), 0o600))
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.step()
		r.step()
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		for stuck := true; stuck; {
			select {
			case <-done:
				stuck = false
			default:
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		t.Fatal("the training loop blocked on a FIFO as the recipe")
	}
	require.NoError(t, r.k.Close())
	require.Equal(t, 1, strings.Count(log.String(), "recipe.jsonl is not a regular file"), log.String())
	require.Contains(t, log.String(), "keeping mode off")
}

// An unknown top-level key in hotcb.yaml under the kernel: named with its line, the valid keys
// listed, nothing loaded (it used to read as "no callbacks"); hotcb's opt section is accepted
// and said to be left alone.
func TestMisspeltYAMLKeyUnderTheKernel(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, rundir.Config)
	require.NoError(t, os.WriteFile(cfg, []byte("version: 1\ncallbaks:\n  r: {target: {kind: module, path: test/rec, symbol: Rec}}\n"), 0o600))
	r := newRun(t, dir)
	log := &logged{}
	r.env.Log = log.add
	r.step()
	r.step()
	require.Equal(t, 1, strings.Count(log.String(), `hotcb.yaml is invalid, keeping the previous configuration: line 2: unknown top-level key "callbaks" (valid: version, callbacks, cb, core, opt, loss, tune)`), log.String())
	require.NoError(t, os.WriteFile(cfg, []byte("version: 1\nopt:\n  params: {lr: 0.5}\ncallbacks:\n  r: {target: {kind: module, path: test/rec, symbol: Rec}}\n"), 0o600))
	r.step()
	require.NoError(t, r.k.Close())
	require.Equal(t, []string{"2 cb.load(r) yaml applied"}, summary(r.ledger()))
	require.Contains(t, log.String(), "hotcb.yaml: section opt (line 2) is not applied")
	require.InDelta(t, 0.1, r.opt.LR(0), 1e-12, "the opt section changed nothing")
}
