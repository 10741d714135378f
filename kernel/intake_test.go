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
