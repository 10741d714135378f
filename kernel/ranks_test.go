package kernel_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// board is an in-memory stand-in for the process group's store: rank 0 appends, the others read
// on from where they were.
type board struct {
	mu   sync.Mutex
	msgs [][]byte
	fail error
}

type boardRank struct {
	b    *board
	rank int
	next int
}

func (r *boardRank) Rank() int { return r.rank }
func (r *boardRank) Publish(m []byte) error {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	if r.rank != 0 {
		return errors.New("only rank 0 publishes")
	}
	if r.b.fail != nil {
		return r.b.fail
	}
	r.b.msgs = append(r.b.msgs, append([]byte(nil), m...))
	return nil
}
func (r *boardRank) Fetch() ([][]byte, error) {
	r.b.mu.Lock()
	defer r.b.mu.Unlock()
	out := r.b.msgs[r.next:]
	r.next = len(r.b.msgs)
	return out, nil
}

// newRankRun is newRun for one rank of a data-parallel run on root.
func newRankRun(t *testing.T, root string, rank int, b *board) *run {
	r := &run{t: t, dir: rundir.RankDir(root, rank)}
	reg := callback.NewRegistry()
	reg.Register("test/rec", "Rec", func(id string, _ map[string]any) (callback.HotCallback, error) {
		return rec{id: id, events: &r.events}, nil
	})
	require.NoError(t, os.MkdirAll(r.dir, 0o700))
	k, err := kernel.New(r.dir, kernel.Options{Controller: controller.Options{Registry: reg, PollEveryStep: true, AllowAnyOwner: true},
		Ranks: &boardRank{b: b, rank: rank}})
	require.NoError(t, err)
	r.k = k
	r.w = bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	r.opt, err = optim.NewSGD(optim.Params(r.w), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	k.RegisterOptimizer("main", r.opt)
	r.env = &torchenv.Env{}
	return r
}

// ledgerSummary is a rank's ledger without sources' wall times: what must be equal across ranks.
func ledgerSummary(r *run) []string {
	var out []string
	for _, e := range r.ledger() {
		id := ""
		if e.ID != nil {
			id = *e.ID
		}
		out = append(out, fmt.Sprintf("%d %s %s.%s(%s) %s %s", e.Step, e.Event, e.Module, e.Op, id, e.Source, e.Decision))
	}
	return out
}

const goFileCB = `package x

import "github.com/hotcb/hotcb/torchenv"

type C struct{ Name string ` + "`hotcb:\"id\"`" + ` }

func (c *C) ID() string                                 { return c.Name }
func (c *C) Handle(ev string, env *torchenv.Env) error  { env.Logf("shipped-callback %d", env.Step); return nil }
func (c *C) SetParams(p map[string]any) error           { return nil }
`

func TestRanksApplyEachOpAtTheSameStep(t *testing.T) {
	root := t.TempDir()
	b := &board{}
	ranks := []*run{newRankRun(t, root, 0, b), newRankRun(t, root, 1, b), newRankRun(t, root, 2, b)}
	logs := make([][]string, len(ranks))
	for i, r := range ranks {
		i := i
		r.env.Log = func(s string) { logs[i] = append(logs[i], s) }
	}
	src := filepath.Join(t.TempDir(), "cb.go")
	require.NoError(t, os.WriteFile(src, []byte(goFileCB), 0o600))
	// Rank 1 runs one safe point ahead of rank 0 and rank 2 one behind, as far as a per-step
	// collective lets them drift.
	for s := 0; s < 9; s++ {
		ranks[1].step()
		if s == 3 {
			ranks[0].cmd(loadRec,
				`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.5}}`,
				"not json",
				`{"module":"cb","op":"load","id":"g","target":{"kind":"python_file","path":"`+src+`","symbol":"C"}}`,
				`{"op":"disable","id":"ghost"}`)
		}
		ranks[0].step()
		if s > 0 {
			ranks[2].step()
		}
	}
	ranks[2].step()
	require.NoError(t, os.Remove(src)) // the other ranks have their own copy
	for _, r := range ranks {
		require.NoError(t, r.k.Close())
	}
	want := ledgerSummary(ranks[0])
	require.Equal(t, []string{
		"5 train_step_end cb.load(r) external applied",
		"5 train_step_end opt.set_params(main) external applied",
		"5 train_step_end .() external ignored", // a bad line: recorded by every rank, as an op is
		"5 train_step_end cb.load(g) external applied",
		"5 train_step_end cb.disable(ghost) external failed",
	}, want, "rank 0 read the commands at step 3 and applied them two steps later")
	for i, r := range ranks[1:] {
		require.Equal(t, want, ledgerSummary(r), "rank %d", i+1)
		require.Equal(t, ranks[0].events, r.events, "rank %d: the callback ran at the same steps", i+1)
		require.Equal(t, ranks[0].w.Float32s(), r.w.Float32s(), "rank %d: the lr changed at the same step", i+1)
		require.DirExists(t, filepath.Join(root, "ranks", fmt.Sprint(i+1)))
	}
	for i := range ranks {
		require.Contains(t, logs[i], "shipped-callback 5", "rank %d ran the go_file callback", i)
	}
	// Ranks 1 and 2 loaded the copy rank 0 sent, from their own capture store.
	entry := ranks[2].ledger()[3]
	sc := entry.Payload["source_capture"].(map[string]any)
	require.True(t, strings.HasPrefix(sc["captured_path"].(string), filepath.Join(ranks[2].dir, rundir.Sources)), "%v", sc)
	require.FileExists(t, sc["captured_path"].(string))
}

func TestRanksSwitchFreezeTogetherAndRecordWhatTheRunNeverReached(t *testing.T) {
	root := t.TempDir()
	b := &board{}
	ranks := []*run{newRankRun(t, root, 0, b), newRankRun(t, root, 1, b)}
	step := func() {
		for _, r := range ranks {
			r.step()
		}
	}
	step()
	require.NoError(t, os.WriteFile(filepath.Join(root, rundir.Freeze), []byte(`{"mode":"prod","policy":"best_effort"}`), 0o600))
	ranks[0].cmd(loadRec) // read with the freeze, after it: ignored on every rank
	step()
	ranks[0].cmd(`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.5}}`)
	step()
	step()
	step()
	ranks[0].cmd(`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.2}}`) // never due
	step()
	for _, r := range ranks {
		require.NoError(t, r.k.Close())
	}
	want := []string{
		"3 train_step_end cb.load(r) external ignored_freeze",
		"4 train_step_end opt.set_params(main) external ignored_freeze",
		"5 train_step_end opt.set_params(main) external failed", // recorded at the last safe point
	}
	for i, r := range ranks {
		require.Equal(t, want, ledgerSummary(r), "rank %d", i)
		last := r.ledger()[2]
		require.Contains(t, *last.Notes, "the run ended before step 7", "rank %d", i)
	}
}

func TestRanksPublishFailureIsLoggedNotApplied(t *testing.T) {
	root := t.TempDir()
	b := &board{fail: errors.New("store unreachable")}
	r0 := newRankRun(t, root, 0, b)
	var lines []string
	r0.env.Log = func(s string) { lines = append(lines, s) }
	r0.step()
	r0.cmd(loadRec)
	r0.step()
	r0.step()
	r0.step()
	require.NoError(t, r0.k.Close())
	require.NoFileExists(t, filepath.Join(root, rundir.Applied), "an op no other rank can get is applied on none")
	require.NotEmpty(t, lines)
	require.Contains(t, strings.Join(lines, "\n"), "cannot send cb.load")
	require.Contains(t, strings.Join(lines, "\n"), "store unreachable")
}
