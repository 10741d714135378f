package trainer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/callbacks/timing"
	"github.com/hotcb/hotcb/launch"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// TestRankMain is one rank of the data-parallel tests below when HOTCB_RANK_TEST names the run
// directory; otherwise it does nothing.
func TestRankMain(t *testing.T) {
	dir := os.Getenv("HOTCB_RANK_TEST")
	if dir == "" {
		t.Skip("a rank of the data-parallel tests (started by them)")
	}
	steps, _ := strconv.ParseInt(os.Getenv("HOTCB_RANK_STEPS"), 10, 64)
	o := trainer.Options{Dir: dir, Steps: steps, TrainN: 640, TestN: 64, Batch: 16, Seed: 1, Progress: -1,
		Resume: os.Getenv("HOTCB_RANK_RESUME") != "", DistTimeout: 10 * time.Second}
	o.Kernel.Controller.AllowAnyOwner = true
	o.Kernel.Controller.PollEveryStep = true
	if os.Getenv("HOTCB_RANK_DIE") != "" && os.Getenv("RANK") != os.Getenv("HOTCB_RANK_DIE") {
		// The survivor must find out by itself (not from the launcher's SIGTERM).
		signal.Ignore(syscall.SIGTERM)
	}
	if os.Getenv("RANK") == os.Getenv("HOTCB_RANK_DIE") {
		// This rank dies once training is under way, as a process the OOM killer picks would.
		go func() {
			for {
				time.Sleep(5 * time.Millisecond)
				if _, err := os.Stat(filepath.Join(rundir.RankDir(dir, 1), rundir.Applied)); err == nil { // training has started
					time.Sleep(200 * time.Millisecond)
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
			}
		}()
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sum, err := trainer.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rank error:", err)
		t.Fatal(err)
	}
	fmt.Printf("summary steps=%d stopped=%q acc=%.4f\n", sum.Steps, sum.Stopped, sum.TestAcc)
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// launchRanks runs n ranks of the test binary's TestRankMain on dir.
func launchRanks(t *testing.T, dir string, n int, env ...string) (string, error) {
	var out syncBuf
	var w io.Writer = &out
	if testing.Verbose() { // the ranks' lines as they come
		w = io.MultiWriter(&out, os.Stderr)
	}
	err := launch.Run(context.Background(), launch.Options{Program: os.Args[0], Args: []string{"-test.run=^TestRankMain$", "-test.v"},
		N: n, Env: append([]string{"HOTCB_RANK_TEST=" + dir}, env...), Out: w, Err: w, Grace: 20 * time.Second})
	return out.String(), err
}

func ledgerOf(t *testing.T, dir string) []rundir.LedgerEntry {
	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	return es
}

func opsAt(es []rundir.LedgerEntry) []string {
	var out []string
	for _, e := range es {
		id := ""
		if e.ID != nil {
			id = *e.ID
		}
		out = append(out, fmt.Sprintf("%d %s %s.%s(%s) %s %s", e.Step, e.Event, e.Module, e.Op, id, e.Source, e.Decision))
	}
	return out
}

// TestDataParallelRunAppliesOpsAtTheSameStepOnEveryRank: two ranks train under one control
// plane; a command written while they run is applied at the same step and event by both, and
// the run resumes from rank 0's checkpoint.
func TestDataParallelRunAppliesOpsAtTheSameStepOnEveryRank(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	done := make(chan struct{})
	go func() { // the user, from another terminal, once training is under way
		defer close(done)
		for i := 0; i < 6000; i++ { // rank 0's ledger appears when the YAML's callbacks load
			time.Sleep(5 * time.Millisecond)
			if _, err := os.Stat(filepath.Join(dir, rundir.Applied)); err == nil {
				break
			}
		}
		op := ops.Op{Module: "opt", Op: ops.OpSetParams, ID: "main", Params: map[string]any{"lr": 0.0005}}
		b, _ := json.Marshal(op)
		rundir.AppendLine(filepath.Join(dir, rundir.Commands), b)
		op = ops.Op{Op: ops.OpSetParams, ID: "timing", Params: map[string]any{"every": 7}}
		b, _ = json.Marshal(op)
		rundir.AppendLine(filepath.Join(dir, rundir.Commands), b)
	}()
	out, err := launchRanks(t, dir, 2, "HOTCB_RANK_STEPS=300")
	<-done
	require.NoError(t, err, out)
	r0, r1 := ledgerOf(t, dir), ledgerOf(t, rundir.RankDir(dir, 1))
	require.Equal(t, opsAt(r0), opsAt(r1), "the same ops at the same step and event on both ranks")
	var set []string
	for _, line := range opsAt(r0) {
		if strings.Contains(line, "set_params") {
			set = append(set, line)
		}
	}
	require.Len(t, set, 2, "%v", opsAt(r0))
	require.Contains(t, out, "[rank 0] summary steps=300")
	require.Contains(t, out, "[rank 1] summary steps=300")
	require.FileExists(t, filepath.Join(dir, "last.pt"))
	require.NoFileExists(t, filepath.Join(rundir.RankDir(dir, 1), "last.pt"), "rank 0 alone writes the checkpoint")
	require.DirExists(t, filepath.Join(rundir.RankDir(dir, 1), "timing"), "rank 1's outputs are in its own directory")
	accs := map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "acc="); i >= 0 {
			accs[l[i:]] = true
		}
	}
	require.Len(t, accs, 1, "every rank evaluates the same replica: %v", accs)

	// A restart resumes both ranks from the checkpoint.
	out, err = launchRanks(t, dir, 2, "HOTCB_RANK_STEPS=310", "HOTCB_RANK_RESUME=1")
	require.NoError(t, err, out)
	require.Contains(t, out, "[rank 1] resumed from "+filepath.Join(dir, "last.pt")+": epoch")
	require.Contains(t, out, "[rank 1] summary steps=310")
	require.Equal(t, opsAt(ledgerOf(t, dir)), opsAt(ledgerOf(t, rundir.RankDir(dir, 1))), "the restart's restores are the same too")
}

// TestDataParallelRankKilledStopsTheOthers: a rank killed mid-run makes the other fail with an
// error naming the data-parallel step, well within its timeout, and the launcher reports it.
func TestDataParallelRankKilledStopsTheOthers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	t0 := time.Now()
	out, err := launchRanks(t, dir, 2, "HOTCB_RANK_STEPS=3000", "HOTCB_RANK_DIE=1")
	var re *launch.RankError
	require.True(t, errors.As(err, &re), "%v\n%s", err, out)
	require.Less(t, time.Since(t0), 60*time.Second)
	require.Contains(t, out, "[rank 0] rank error: training step", "rank 0 failed with an error, not a hang")
	require.Contains(t, out, "on rank 0 of 2 (when another rank stops or dies")
}

// slower sleeps at forward_end on one rank of a data-parallel run: that rank computes longer,
// and the others wait for it in the gradient all-reduce.
type slower struct {
	id   string
	rank int
	ms   float64
}

func init() {
	callback.Register("test/slower", "Slower", func(id string, init map[string]any) (callback.HotCallback, error) {
		s := &slower{id: id}
		return s, s.SetParams(init)
	})
}

func (s *slower) ID() string { return s.id }
func (s *slower) SetParams(p map[string]any) error {
	num := func(v any) (float64, bool) {
		switch x := v.(type) {
		case int:
			return float64(x), true
		case int64:
			return float64(x), true
		case float64:
			return x, true
		}
		return 0, false
	}
	if v, ok := num(p["rank"]); ok {
		s.rank = int(v)
	}
	if v, ok := num(p["ms"]); ok {
		s.ms = v
	}
	return nil
}
func (s *slower) Handle(ev string, env *torchenv.Env) error {
	if ev == torchenv.ForwardEnd && env.Ranks != nil && env.Ranks.Rank() == s.rank {
		time.Sleep(time.Duration(s.ms * float64(time.Millisecond)))
	}
	return nil
}

// TestDataParallelTimingNamesTheSlowRank: rank 1 spends 30 ms more per step; rank 0's timing
// records show it waiting about that long in the all-reduce each step, and both ranks' records
// name rank 1 as the slowest, by about that much.
func TestDataParallelTimingNamesTheSlowRank(t *testing.T) {
	const sleep = 30
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte(fmt.Sprintf(`version: 1
callbacks:
  timing:
    enabled: true
    target: {kind: module, path: github.com/hotcb/hotcb/callbacks/timing, symbol: Timing}
    init: {every: 40}
  slower:
    enabled: true
    target: {kind: module, path: test/slower, symbol: Slower}
    init: {rank: 1, ms: %d}
`, sleep)), 0o600))
	t0 := time.Now()
	out, err := launchRanks(t, dir, 2, "HOTCB_RANK_STEPS=121")
	require.NoError(t, err, out)
	t.Logf("2 ranks, 121 steps in %v", time.Since(t0).Round(time.Millisecond))
	for r, rdir := range []string{dir, rundir.RankDir(dir, 1)} {
		recs, bad, err := rundir.ReadJSONL[timing.Record](filepath.Join(rdir, "timing", "timing.jsonl"))
		require.NoError(t, err)
		require.Empty(t, bad)
		require.Len(t, recs, 3, "rank %d: every 40 steps timed, and fit_end", r)
		prev := int64(0)
		for _, rec := range recs {
			dp := rec.DataParallel
			require.NotNil(t, dp, "rank %d step %d", r, rec.Step)
			t.Logf("rank %d step %d (%d steps, %d waits): step p50 %.2f ms, all-reduce wait p50 %.2f mean %.2f (%.0f%%), compute %.2f; ranks %v; slowest %v by %.2f ms (+%.0f%%) %s",
				r, rec.Step, dp.Steps, dp.AllReduceWaitMs.N, rec.StepMs.P50, dp.AllReduceWaitMs.P50, dp.AllReduceWaitMs.Mean, 100*dp.AllReduceWaitShare, dp.ComputeMs,
				values(dp.RankComputeMs), deref(dp.SlowestRank), dp.SlowestByMs, dp.SlowestByPct, dp.Note)
			require.Equal(t, r, dp.Rank)
			require.Equal(t, 2, dp.Size)
			require.Equal(t, rec.Steps-prev, dp.Steps, "the steps since the previous record")
			prev = rec.Steps
			require.GreaterOrEqual(t, int64(dp.AllReduceWaitMs.N), dp.Steps-1, "a wait for (nearly) every step")
			if r == 0 {
				require.Greater(t, dp.AllReduceWaitMs.P50, 0.6*sleep, "rank 0 waits for rank 1")
				require.Greater(t, dp.AllReduceWaitShare, 0.1)
			} else {
				require.Less(t, dp.AllReduceWaitMs.P50, 0.4*sleep, "rank 1 hardly waits")
			}
			require.Empty(t, dp.Missing)
			require.NotNil(t, dp.SlowestRank)
			require.Equal(t, 1, *dp.SlowestRank)
			require.Greater(t, dp.SlowestByMs, 0.6*sleep)
		}
	}
	require.Regexp(t, `\[rank 0\] \[timing\] step=\d+ .* \| rank 0/2: all-reduce wait p50 \d+\.\d\dms mean \d+\.\d\d \(\d+% of step\); slowest rank 1 by \d+\.\d\dms`, out)
}

func values(ps []*float64) []string {
	var s []string
	for _, p := range ps {
		if p == nil {
			s = append(s, "-")
		} else {
			s = append(s, strconv.FormatFloat(*p, 'f', 2, 64))
		}
	}
	return s
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
