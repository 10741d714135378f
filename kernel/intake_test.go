package kernel_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
)

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
