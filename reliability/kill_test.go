package reliability

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// traineeEnv makes this test binary a training process on the run directory it names (see
// TestMain): the kill campaign starts it, kills it and starts it again.
const traineeEnv = "HOTCB_TEST_TRAINEE_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(traineeEnv); dir != "" {
		os.Exit(trainee(dir))
	}
	os.Exit(m.Run())
}

// trainee is a training process: a kernel over dir with the test/seq callback registered,
// stepping every 200 µs until SIGTERM (or SIGKILL). It prints "ready" after its first safe
// point.
func trainee(dir string) int {
	reg := callback.NewRegistry()
	reg.Register("test/seq", "Seq", func(id string, _ map[string]any) (callback.HotCallback, error) { return &seqCB{id: id}, nil })
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{Registry: reg}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	env := &torchenv.Env{RunDir: dir}
	for step := int64(0); ctx.Err() == nil; step++ {
		env.Step = step
		k.Apply(env, torchenv.TrainStepEnd)
		if step == 0 {
			fmt.Println("ready")
		}
		time.Sleep(200 * time.Microsecond)
	}
	if err := k.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestKillCampaign: commands are appended all the time, at random moments, while a training
// process is started, killed with SIGKILL at a random moment (HOTCB_KILLS times, default 50),
// and started again, sometimes after a pause with no process at all. At the end one process
// runs until everything written is applied. Every command must be applied exactly once across
// all the processes (by the ledger, which is what a restart trusts), every ledger line must
// parse, seq must never repeat, and the ledger and recipe must stay linear in size: the
// commands, plus one restore per start.
func TestKillCampaign(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills a training process 50 times (≈30 s)")
	}
	kills := 50
	if s := os.Getenv("HOTCB_KILLS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "HOTCB_KILLS")
		kills = n
	}
	dir := t.TempDir()
	cmds := filepath.Join(dir, rundir.Commands)
	require.NoError(t, rundir.AppendLine(cmds, []byte(`{"op":"load","id":"seq","target":{"kind":"module","path":"test/seq","symbol":"Seq"}}`)))
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	seed := rng.Uint64()
	rng = rand.New(rand.NewPCG(seed, 7))
	t.Logf("random seed %d", seed)

	// The writer: commands at random intervals for the whole campaign.
	written := 0
	stopWriting := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		wr := rand.New(rand.NewPCG(seed, 11))
		for {
			select {
			case <-stopWriting:
				writerDone <- nil
				return
			default:
			}
			line := fmt.Sprintf(`{"op":"set_params","id":"seq","params":{"n":%d}}`, written)
			if err := rundir.AppendLine(cmds, []byte(line)); err != nil {
				writerDone <- err
				return
			}
			written++
			time.Sleep(time.Duration(wr.IntN(3000)) * time.Microsecond)
		}
	}()

	start := func() (*exec.Cmd, *bufio.Scanner) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), traineeEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		return cmd, bufio.NewScanner(out)
	}
	t0 := time.Now()
	starts := 0
	for i := 0; i < kills; i++ {
		cmd, out := start()
		starts++
		if rng.IntN(2) == 0 { // half the kills land after the first safe point, half may not
			out.Scan()
		}
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		_ = cmd.Wait()
		if rng.IntN(4) == 0 {
			time.Sleep(time.Duration(rng.IntN(100)) * time.Millisecond) // no trainer at all for a while
		}
	}
	close(stopWriting)
	require.NoError(t, <-writerDone)

	// The last process applies what is left, then stops cleanly.
	cmd, out := start()
	starts++
	require.True(t, out.Scan(), "the last trainee starts")
	applied := func() map[int]int {
		l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
		require.NoError(t, err)
		seen := map[int]int{}
		for _, e := range l.Entries {
			if e.Source == rundir.SourceExternal && e.Op == "set_params" {
				n, _ := e.Payload["params"].(map[string]any)["n"].(int64)
				seen[int(n)]++
			}
		}
		return seen
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(applied()) < written && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())

	l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, l.Bad, "every ledger line parses")
	seen := applied()
	var lost, twice []int
	for n := 0; n < written; n++ {
		switch seen[n] {
		case 0:
			lost = append(lost, n)
		case 1:
		default:
			twice = append(twice, n)
		}
	}
	require.Empty(t, lost, "commands never applied (of %d)", written)
	require.Empty(t, twice, "commands applied more than once")
	var loads, restores int
	for i, e := range l.Entries {
		if i > 0 {
			require.Greater(t, e.Seq, l.Entries[i-1].Seq, "seq increases and never repeats")
		}
		require.Equal(t, rundir.DecisionApplied, e.Decision, "seq %d: %v", e.Seq, e.Error)
		switch {
		case e.Source == rundir.SourceRestore:
			restores++
		case e.Op == "load":
			loads++
		}
	}
	require.Equal(t, 1, loads, "the load command, applied once")
	require.LessOrEqual(t, restores, starts, "at most one restore per start")
	require.Len(t, l.Entries, written+loads+restores, "nothing but the commands and the restores")
	recipe, err := rundir.ExportRecipe(l.Entries)
	require.NoError(t, err)
	require.Len(t, recipe, written+1, "the recipe is the commands")
	t.Logf("%d commands written during %d kills and %d starts in %v: each applied once; ledger %d lines (%d restores), recipe %d entries",
		written, kills, starts, time.Since(t0).Round(time.Millisecond), len(l.Entries), restores, len(recipe))
}
