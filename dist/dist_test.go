package dist

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/data"
	"github.com/hotcb/hotcb/models"
)

// testTimeout is the group timeout of the multi-process tests: short, so that a lost peer fails
// the others quickly.
const testTimeout = 5 * time.Second

func init() {
	roles["collectives"] = roleCollectives
	roles["ddp"] = roleDDP
	roles["fail"] = roleFail
}

// ---- collectives and the store ----

type collectivesResult struct {
	Sum, Avg, Min, Max, Product []float64
	IntSum                      []int64
	AvgIntErr                   string
	Broadcast                   []float64
	Gather                      [][]float64
	NonContiguous               []float64
	StoreGot                    string
	Counter                     int64
	Waited                      bool
	MissingErr                  string
	MissingTook                 float64 // seconds
	Deleted, SetAfterDelete     bool
	ParamSums                   []float64 // SmallCNN's parameters after NewDDP
	RunningMean                 []float64 // its first BatchNorm's running mean after NewDDP
}

func roleCollectives(t *testing.T, g *Group, _ json.RawMessage) any {
	r := float64(g.Rank())
	var res collectivesResult
	reduce := func(op ReduceOp) []float64 {
		x := bridge.Full(bridge.Shape{2, 2}, r+1, bridge.Float64)
		require.NoError(t, g.AllReduce(x, op))
		return x.Float64s()
	}
	res.Sum, res.Avg, res.Min, res.Max, res.Product = reduce(Sum), reduce(Avg), reduce(Min), reduce(Max), reduce(Product)

	xi := bridge.Full(bridge.Shape{3}, r+1, bridge.Int64)
	require.NoError(t, g.AllReduce(xi, Sum))
	res.IntSum = xi.Int64s()
	err := g.AllReduce(xi, Avg) // refused before anything is sent: the group goes on
	require.Error(t, err)
	res.AvgIntErr = err.Error()

	b := bridge.Full(bridge.Shape{3}, 10*r)
	require.NoError(t, g.Broadcast(b, 1))
	res.Broadcast = b.Float64s()

	parts, err := g.AllGather(bridge.FromSlice([]float64{r, 2 * r}))
	require.NoError(t, err)
	for _, p := range parts {
		res.Gather = append(res.Gather, p.Float64s())
	}

	// In place on a non-contiguous view: the result lands in the tensor given.
	base := bridge.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3).MulScalar(r + 1)
	view := base.Transpose(0, 1)
	require.NoError(t, g.AllReduce(view, Sum))
	res.NonContiguous = base.Float64s()
	require.NoError(t, g.Barrier())

	// The store: rank 0 publishes, the others read; a shared counter; a wait; a timeout.
	st := g.Store()
	if g.Rank() == 0 {
		require.NoError(t, st.Set("cmd", []byte("go")))
	}
	v, err := st.Get("cmd", testTimeout)
	require.NoError(t, err)
	res.StoreGot = string(v)
	_, err = st.Add("counter", 1)
	require.NoError(t, err)
	require.NoError(t, g.Barrier())
	res.Counter, err = st.Add("counter", 0)
	require.NoError(t, err)
	if g.Rank() == 2 {
		time.Sleep(200 * time.Millisecond)
		require.NoError(t, st.Set("late", nil))
	}
	require.NoError(t, st.Wait(testTimeout, "late"))
	res.Waited = true
	start := time.Now()
	_, err = st.Get(fmt.Sprintf("missing-%d", g.Rank()), 300*time.Millisecond)
	res.MissingTook = time.Since(start).Seconds()
	require.Error(t, err)
	res.MissingErr = err.Error()
	require.NoError(t, g.Barrier())
	if g.Rank() == 0 {
		res.Deleted, err = st.Delete("cmd")
		require.NoError(t, err)
	}
	require.NoError(t, g.Barrier())
	res.SetAfterDelete, err = st.Check("cmd")
	require.NoError(t, err)

	// NewDDP gives every rank rank 0's parameters and buffers.
	bridge.ManualSeed(uint64(100 + g.Rank()))
	m := models.NewSmallCNN(1, 3)
	bn := m.Features.At(1).(*nn.BatchNorm2d)
	bn.RunningMean.FillInPlace(5 + r)
	d, err := NewDDP(g, m, DDPOptions{})
	require.NoError(t, err)
	defer d.Close()
	for _, p := range nn.Parameters(m) {
		res.ParamSums = append(res.ParamSums, p.Detach().Sum().Item())
	}
	res.RunningMean = bn.RunningMean.Float64s()
	return res
}

func TestCollectivesAndStore(t *testing.T) {
	start := time.Now()
	j := startRanks(t, "collectives", 3, testTimeout, nil)
	j.wait(2 * time.Minute)
	var res []collectivesResult
	j.requireOK(&res)
	t.Logf("3 ranks: %v", time.Since(start).Round(time.Millisecond))
	for r, x := range res {
		assert.Equal(t, []float64{6, 6, 6, 6}, x.Sum, "rank %d sum", r)
		assert.Equal(t, []float64{2, 2, 2, 2}, x.Avg, "rank %d avg", r)
		assert.Equal(t, []float64{1, 1, 1, 1}, x.Min, "rank %d min", r)
		assert.Equal(t, []float64{3, 3, 3, 3}, x.Max, "rank %d max", r)
		assert.Equal(t, []float64{6, 6, 6, 6}, x.Product, "rank %d product", r)
		assert.Equal(t, []int64{6, 6, 6}, x.IntSum, "rank %d int sum", r)
		assert.Contains(t, x.AvgIntErr, "avg needs a floating-point tensor")
		assert.Equal(t, []float64{10, 10, 10}, x.Broadcast, "rank %d broadcast from 1", r)
		assert.Equal(t, [][]float64{{0, 0}, {1, 2}, {2, 4}}, x.Gather, "rank %d all_gather", r)
		assert.Equal(t, []float64{6, 12, 18, 24, 30, 36}, x.NonContiguous, "rank %d non-contiguous all_reduce", r)
		assert.Equal(t, "go", x.StoreGot)
		assert.Equal(t, int64(3), x.Counter)
		assert.True(t, x.Waited)
		assert.Contains(t, x.MissingErr, fmt.Sprintf(`get("missing-%d", timeout 300ms)`, r))
		assert.Contains(t, x.MissingErr, fmt.Sprintf("rank %d of 3", r))
		assert.Less(t, x.MissingTook, 3.0, "a get of a missing key returns after its timeout")
		assert.GreaterOrEqual(t, x.MissingTook, 0.25)
		assert.False(t, x.SetAfterDelete)
		assert.Equal(t, res[0].ParamSums, x.ParamSums, "rank %d holds rank 0's parameters after NewDDP", r)
		assert.Equal(t, []float64{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5}, x.RunningMean, "rank %d holds rank 0's buffers", r)
	}
	assert.True(t, res[0].Deleted)
	t.Logf("store get of a missing key (timeout 300ms) failed after %.3fs: %s", res[0].MissingTook, res[0].MissingErr)
}

// ---- DDP training against one process on the global batch ----

type ddpArg struct {
	Model         string // "mlp" or "cnn"
	N, Batch      int    // examples; batch per rank
	Epochs        int
	Seed          uint64
	BucketCapMB   float64
	FirstBucketMB float64
	FindUnused    bool
	Accumulate    int    // micro-batches a step: all but the last forward on the model itself (no_sync)
	Mismatch      string // the model rank 1 builds instead: NewDDP must refuse
}

type ddpResult struct {
	Losses        []float64            // this rank's loss per step
	Params        map[string][]float64 // after training
	BucketsBefore [][]string           // before the first backward pass
	Buckets       [][]string           // after training
	NewDDPErr     string               // NewDDP's error (Mismatch)
	StepErr       string               // the error that stopped training, if any
}

func newModel(kind string) nn.Module {
	switch kind {
	case "mlp":
		return models.MLP(16, 64, 4)
	case "cnn":
		return nn.NewSequential(nn.NewConv2d(1, 6, 3, nn.Conv2dOptions{Padding: 1}), nn.NewReLU(),
			nn.NewConv2d(6, 8, 3, nn.Conv2dOptions{Padding: 1}), nn.NewReLU(), nn.NewFlatten(1, -1), nn.NewLinear(8*4*4, 4))
	case "wide":
		return models.MLP(16, 65, 4)
	case "deep":
		return nn.NewSequential(nn.NewFlatten(1, -1), nn.NewLinear(16, 64), nn.NewReLU(), nn.NewLinear(64, 4), nn.NewLinear(4, 4))
	case "partly":
		return &partlyUsed{Used: nn.NewLinear(16, 4), Unused: nn.NewLinear(4, 4)}
	}
	panic("unknown model " + kind)
}

// ddpData is the data set both the ranks and the single-process reference train on.
func ddpData(n int) *data.TensorDataset {
	bridge.ManualSeed(1234)
	return &data.TensorDataset{Images: bridge.Randn(bridge.Shape{int64(n), 1, 4, 4}), Labels: bridge.RandInt(0, 4, bridge.Shape{int64(n)})}
}

func sgd(m nn.Module) *optim.Optimizer {
	o, err := optim.NewSGD(optim.Params(nn.Parameters(m)...), optim.SGDOptions{LR: 0.05, Momentum: 0.9})
	if err != nil {
		panic(err)
	}
	return o
}

func paramMap(m nn.AnyModule) map[string][]float64 {
	out := map[string][]float64{}
	for _, p := range nn.NamedParameters(m) {
		out[p.Name] = p.Tensor.Detach().Float64s()
	}
	return out
}

func (r ddpResult) skipBarrier() bool { return r.StepErr != "" || r.NewDDPErr != "" }

// partlyUsed has a layer its Forward leaves out.
type partlyUsed struct {
	nn.Node
	Used, Unused *nn.Linear
}

func (m *partlyUsed) Forward(x *bridge.Tensor) *bridge.Tensor {
	return m.Used.Forward(x.Flatten(1, -1))
}

func roleDDP(t *testing.T, g *Group, raw json.RawMessage) any {
	var a ddpArg
	require.NoError(t, json.Unmarshal(raw, &a))
	ds := ddpData(a.N)
	bridge.ManualSeed(a.Seed + uint64(g.Rank())) // different weights on each rank: NewDDP must copy rank 0's
	kind := a.Model
	if a.Mismatch != "" && g.Rank() == 1 {
		kind = a.Mismatch
	}
	m := newModel(kind)
	var res ddpResult
	d, err := NewDDP(g, m, DDPOptions{BucketCapMB: a.BucketCapMB, FirstBucketMB: a.FirstBucketMB, FindUnusedParameters: a.FindUnused})
	if a.Mismatch != "" {
		require.Error(t, err)
		res.NewDDPErr = err.Error()
		return res
	}
	require.NoError(t, err)
	defer d.Close()
	res.BucketsBefore, err = d.Buckets()
	require.NoError(t, err)
	opt := sgd(m)
	sampler, err := data.NewDistributedSampler(ds.Len(), g.Rank(), g.Size(), data.DistributedSamplerOptions{Shuffle: true, Seed: a.Seed})
	require.NoError(t, err)
	loader, err := data.NewLoader(ds, data.LoaderOptions{BatchSize: a.Batch, Sampler: sampler, Prefetch: -1})
	require.NoError(t, err)
	defer loader.Close()
	acc, micro := max(1, a.Accumulate), 0
	for epoch := 0; epoch < a.Epochs; epoch++ {
		for b := range loader.Epoch(t.Context(), epoch) {
			if micro == 0 {
				nn.ZeroGrad(m)
			}
			last := micro == acc-1
			var loss *bridge.Tensor
			err := bridge.Try(func() {
				if last {
					loss = bridge.CrossEntropy(d.Forward(b.X), b.Y)
				} else { // local gradients only: the last micro-batch's backward averages the sum
					loss = bridge.CrossEntropy(m.Forward(b.X), b.Y)
				}
			})
			if err != nil {
				res.StepErr = err.Error()
				return res
			}
			require.NoError(t, d.Backward(loss))
			res.Losses = append(res.Losses, loss.Item())
			if micro++; last {
				opt.Step()
				micro = 0
			}
		}
	}
	res.Params = paramMap(m)
	res.Buckets, err = d.Buckets()
	require.NoError(t, err)
	return res
}

// reference trains one process on the global batches the ranks share: the same permutations
// (a DistributedSampler of one replica), world*Batch examples a step, the mean loss.
func reference(t *testing.T, a ddpArg, world int) (losses []float64, params map[string][]float64) {
	ds := ddpData(a.N)
	bridge.ManualSeed(a.Seed) // rank 0's weights
	m := newModel(a.Model)
	opt := sgd(m)
	whole, err := data.NewDistributedSampler(a.N, 0, 1, data.DistributedSamplerOptions{Shuffle: true, Seed: a.Seed})
	require.NoError(t, err)
	global := a.Batch * world
	acc, micro := max(1, a.Accumulate), 0
	for epoch := 0; epoch < a.Epochs; epoch++ {
		order := whole.Indices(epoch)
		for k := 0; k+global <= len(order); k += global {
			x, y := ds.Batch(order[k : k+global])
			if micro == 0 {
				nn.ZeroGrad(m)
			}
			loss := bridge.CrossEntropy(m.Forward(x), y)
			loss.Backward()
			losses = append(losses, loss.Item())
			if micro++; micro == acc {
				opt.Step()
				micro = 0
			}
		}
	}
	return losses, paramMap(m)
}

// relClose reports whether got is within rtol (relative to the largest magnitude, floored at 1)
// of want, elementwise.
func maxRelDiff(got, want []float64) float64 {
	worst := 0.0
	for i := range want {
		d := math.Abs(got[i]-want[i]) / math.Max(1, math.Abs(want[i]))
		worst = math.Max(worst, d)
	}
	return worst
}

// The tolerance of DDP against one process: the averaged gradients differ from the global
// batch's by float32 rounding (the sums run in another order).
const ddpTol = 1e-5

func checkDDP(t *testing.T, world int, a ddpArg) []ddpResult {
	start := time.Now()
	j := startRanks(t, "ddp", world, testTimeout, a)
	j.wait(3 * time.Minute)
	var res []ddpResult
	j.requireOK(&res)
	elapsed := time.Since(start)
	wantLoss, wantParams := reference(t, a, world)
	steps := a.Epochs * a.N / (a.Batch * world)
	require.Len(t, wantLoss, steps)
	worstLoss, worstParam := 0.0, 0.0
	for s := 0; s < steps; s++ {
		mean := 0.0
		for _, r := range res {
			require.Len(t, r.Losses, steps)
			mean += r.Losses[s] / float64(world)
		}
		worstLoss = math.Max(worstLoss, maxRelDiff([]float64{mean}, []float64{wantLoss[s]}))
	}
	for r, x := range res {
		require.Len(t, x.Params, len(wantParams))
		for name, want := range wantParams {
			require.Len(t, x.Params[name], len(want), "rank %d %s", r, name)
			worstParam = math.Max(worstParam, maxRelDiff(x.Params[name], want))
			assert.Equal(t, res[0].Params[name], x.Params[name], "rank %d's %s differs from rank 0's: the replicas drifted apart", r, name)
		}
	}
	assert.Less(t, worstLoss, ddpTol, "mean of the ranks' losses vs one process on the global batch")
	assert.Less(t, worstParam, ddpTol, "parameters after training vs one process on the global batch")
	assert.NotEqual(t, wantLoss[0], wantLoss[steps-1], "training changed nothing")
	t.Logf("%d ranks, %s, %d micro-batches of %d×%d examples: %v; worst relative difference from one process: loss %.2g, parameters %.2g; buckets before the first backward %d, after %d: %v",
		world, a.Model, steps, world, a.Batch, elapsed.Round(time.Millisecond), worstLoss, worstParam, len(res[0].BucketsBefore), len(res[0].Buckets), res[0].Buckets)
	return res
}

func TestDDPTwoRanksMatchesOneProcess(t *testing.T) {
	res := checkDDP(t, 2, ddpArg{Model: "mlp", N: 48, Batch: 6, Epochs: 2, Seed: 7})
	assert.Len(t, res[0].Buckets, 1, "a small model fits in one 1 MiB bucket")
}

func TestDDPThreeRanksSmallBucketsMatchesOneProcess(t *testing.T) {
	// Buckets of ~1 KB: the CNN's parameters spread over several, reduced while backward runs.
	res := checkDDP(t, 3, ddpArg{Model: "cnn", N: 48, Batch: 4, Epochs: 2, Seed: 11, BucketCapMB: 0.001, FirstBucketMB: 0.0005})
	assert.Len(t, res[0].BucketsBefore, 1, "one bucket until the order of gradients is known (PyTorch 1.13)")
	assert.Greater(t, len(res[0].Buckets), 2, "buckets rebuilt by size after the first backward pass")
	assert.Contains(t, res[0].Buckets[0], "5.bias", "the first bucket reduced holds the last layer's gradients")
}

func TestDDPGradientAccumulation(t *testing.T) {
	// Two micro-batches a step, the first one's forward on the model itself (PyTorch's
	// no_sync): the sum of both gradients is averaged once, as one process accumulating the
	// two global micro-batches.
	checkDDP(t, 2, ddpArg{Model: "mlp", N: 48, Batch: 6, Epochs: 2, Seed: 13, Accumulate: 2})
}

func TestDDPFindUnusedParameters(t *testing.T) {
	// A layer the forward pass leaves out: with FindUnusedParameters training goes on and still
	// equals one process (the unused layer gets no gradient and stays as it was).
	res := checkDDP(t, 2, ddpArg{Model: "partly", N: 48, Batch: 6, Epochs: 1, Seed: 5, FindUnused: true})
	bridge.ManualSeed(5)
	fresh := paramMap(newModel("partly"))
	assert.Equal(t, fresh["unused.weight"], res[0].Params["unused.weight"])
	assert.NotEqual(t, fresh["used.weight"], res[0].Params["used.weight"])

	// Without it the Reducer waits for that layer's gradient forever: the next forward pass
	// says so, with PyTorch's explanation and the Go option to set.
	j := startRanks(t, "ddp", 2, testTimeout, ddpArg{Model: "partly", N: 48, Batch: 6, Epochs: 1, Seed: 5})
	j.wait(2 * time.Minute)
	var bad []ddpResult
	j.requireOK(&bad)
	for r, x := range bad {
		assert.Len(t, x.Losses, 1, "rank %d: one step, then the error", r)
		assert.Contains(t, x.StepErr, fmt.Sprintf("on rank %d of 2", r))
		assert.Contains(t, x.StepErr, "DDPOptions{FindUnusedParameters: true}")
	}
	t.Logf("unused parameter without FindUnusedParameters: %s", bad[0].StepErr)
}

func TestDDPRefusesDifferentModels(t *testing.T) {
	// Rank 1 builds a wider layer (only rank 1 can tell: c10d compares with rank 0's), or one
	// layer more (both can): either way every rank fails at once and says so.
	for kind, found := range map[string]string{"wide": "as rank(s) 1 found", "deep": "as rank(s) 0, 1 found"} {
		j := startRanks(t, "ddp", 2, testTimeout, ddpArg{Model: "mlp", N: 48, Batch: 6, Epochs: 1, Mismatch: kind})
		j.wait(2 * time.Minute)
		var res []ddpResult
		j.requireOK(&res)
		for r, x := range res {
			assert.Contains(t, x.NewDDPErr, fmt.Sprintf("DDP construction on rank %d of 2 failed", r))
			assert.Contains(t, x.NewDDPErr, "every rank must build the same model")
			assert.Contains(t, x.NewDDPErr, found)
		}
		t.Logf("%s, rank 0: %s", kind, res[0].NewDDPErr)
		t.Logf("%s, rank 1: %s", kind, res[1].NewDDPErr)
	}
}

// ---- a lost peer ----

type failArg struct {
	Mode     string // "hang": the victim stops answering; "kill": the test SIGKILLs it
	Victim   int
	FailStep int
}

type failResult struct {
	Steps       int     // steps completed
	Err         string  // the error that stopped this rank
	StepStarted float64 // unix seconds: the failing step began
	Failed      float64 // unix seconds: the error came
}

func (r failResult) skipBarrier() bool { return true }

func roleFail(t *testing.T, g *Group, raw json.RawMessage) any {
	var a failArg
	require.NoError(t, json.Unmarshal(raw, &a))
	ds := ddpData(48)
	bridge.ManualSeed(3)
	m := newModel("mlp")
	d, err := NewDDP(g, m, DDPOptions{})
	require.NoError(t, err)
	opt := sgd(m)
	var res failResult
	for step := 0; ; step++ {
		if g.Rank() == a.Victim && step == a.FailStep {
			require.NoError(t, os.WriteFile(markerPath(g.Rank(), "stuck"), nil, 0o644))
			time.Sleep(time.Hour) // silent: alive, connected, never sends (the test kills it)
		}
		res.StepStarted = float64(time.Now().UnixNano()) / 1e9
		x, y := ds.Batch([]int64{int64(2 * g.Rank()), int64(2*g.Rank() + 1)})
		nn.ZeroGrad(m)
		var loss *bridge.Tensor
		if err = bridge.Try(func() { loss = bridge.CrossEntropy(d.Forward(x), y) }); err == nil {
			err = d.Backward(loss)
		}
		if err != nil {
			res.Failed = float64(time.Now().UnixNano()) / 1e9
			res.Err = err.Error()
			var de *Error
			require.True(t, errors.As(err, &de), "a *dist.Error: %v", err)
			// The group is broken: collectives now fail at once with the same error.
			require.Equal(t, g.Err(), err)
			require.Equal(t, err, g.Barrier())
			return res
		}
		opt.Step()
		res.Steps++
		require.Less(t, step, 100, "no failure")
	}
}

func checkFail(t *testing.T, mode string) {
	a := failArg{Mode: mode, Victim: 2, FailStep: 3}
	j := startRanks(t, "fail", 3, testTimeout, a)
	j.waitMarker(a.Victim, "stuck", time.Minute)
	var killed time.Time
	if mode == "kill" {
		require.NoError(t, j.ranks[a.Victim].cmd.Process.Kill()) // SIGKILL
		killed = time.Now()
	}
	j.wait(testTimeout+time.Minute, 0, 1)
	var res []failResult
	for r := 0; r < 2; r++ {
		require.NoError(t, j.ranks[r].err, "rank %d:\n%s", r, j.ranks[r].out.String())
	}
	j.results(&res)
	for r := 0; r < 2; r++ {
		x := res[r]
		assert.Equal(t, a.FailStep, x.Steps, "rank %d trained until the victim stopped", r)
		assert.Contains(t, x.Err, fmt.Sprintf("DDP backward on rank %d of 3 failed (timeout 5s)", r))
		stuck := x.Failed - x.StepStarted
		switch mode {
		case "hang":
			// A silent peer: the backward pass waits for it until the timeout, not forever.
			assert.GreaterOrEqual(t, stuck, testTimeout.Seconds()-0.5, "rank %d gave up before the timeout", r)
			assert.Less(t, stuck, testTimeout.Seconds()+5, "rank %d waited past the timeout", r)
		case "kill":
			after := x.Failed - float64(killed.UnixNano())/1e9
			assert.Less(t, after, testTimeout.Seconds()+5, "rank %d noticed the dead peer too late", r)
			t.Logf("rank %d failed %.2fs after the kill", r, after)
		}
		t.Logf("rank %d (%s): stuck %.2fs in step %d, then: %s", r, mode, stuck, x.Steps, x.Err)
	}
}

func TestDDPSilentPeerFailsWithinTimeout(t *testing.T) { checkFail(t, "hang") }

func TestDDPKilledPeerFailsOthers(t *testing.T) { checkFail(t, "kill") }

// ---- joining ----

func TestInitMissingPeerTimesOut(t *testing.T) {
	port := freePort(t)
	start := time.Now()
	_, err := Init(Options{Rank: 0, WorldSize: 2, MasterPort: port, Timeout: 1500 * time.Millisecond})
	took := time.Since(start)
	require.Error(t, err)
	var de *Error
	require.True(t, errors.As(err, &de))
	assert.Contains(t, err.Error(), "rank 0 of 2")
	assert.Contains(t, err.Error(), "timeout 1500ms")
	assert.Less(t, took, 10*time.Second)
	t.Logf("rank 0 alone: %v after %v", err, took.Round(time.Millisecond))

	start = time.Now()
	_, err = Init(Options{Rank: 1, WorldSize: 2, MasterPort: freePort(t), Timeout: 1500 * time.Millisecond})
	took = time.Since(start)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rank 1 of 2")
	assert.Less(t, took, 10*time.Second)
	t.Logf("rank 1 without a server: %v after %v", err, took.Round(time.Millisecond))
}

func TestSingleRankGroup(t *testing.T) {
	g, err := Init(Options{Rank: 0, WorldSize: 1, MasterPort: freePort(t), Timeout: 10 * time.Second})
	require.NoError(t, err)
	x := bridge.FromSlice([]float32{1, 2})
	require.NoError(t, g.AllReduce(x, Avg))
	assert.Equal(t, []float32{1, 2}, x.Float32s())
	require.NoError(t, g.Store().Set("k", []byte("v")))
	v, err := g.Store().Get("k", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "v", string(v))
	m := models.MLP(4, 8, 2)
	d, err := NewDDP(g, m, DDPOptions{})
	require.NoError(t, err)
	bridge.NoGrad(func() { d.Forward(bridge.Randn(bridge.Shape{3, 4})) }) // evaluation: nothing to reduce
	loss := d.Forward(bridge.Randn(bridge.Shape{3, 4})).Sum()
	require.NoError(t, d.Backward(loss))
	require.NoError(t, d.BeginForward()) // abandoned: the next forward starts over
	loss = d.Forward(bridge.Randn(bridge.Shape{3, 4})).Sum()
	require.NoError(t, d.Backward(loss))
	require.Error(t, d.EndForward(), "EndForward without BeginForward")
	for _, p := range nn.Parameters(m) {
		require.NotNil(t, p.Grad())
	}
	d.Close()
	require.NoError(t, g.Close())
	err = g.Barrier()
	require.ErrorIs(t, err, ErrClosed)
	_, err = g.Store().Get("k", time.Second)
	require.ErrorIs(t, err, ErrClosed)
}

// ---- options ----

func TestFromEnv(t *testing.T) {
	set := func(kv map[string]string) {
		for _, k := range envVars {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		for k, v := range kv {
			t.Setenv(k, v)
		}
	}
	full := map[string]string{"RANK": "1", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29400"}
	set(full)
	o, err := FromEnv()
	require.NoError(t, err)
	assert.Equal(t, Options{Rank: 1, WorldSize: 4, LocalRank: 1, LocalWorldSize: 2, MasterAddr: "10.0.0.1", MasterPort: 29400}, o)

	set(map[string]string{"RANK": "2", "WORLD_SIZE": "3", "MASTER_ADDR": "localhost", "MASTER_PORT": "1"})
	o, err = FromEnv()
	require.NoError(t, err)
	assert.Equal(t, 2, o.LocalRank, "without LOCAL_RANK: one machine")

	cases := []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{}, []string{"RANK is not set", "WORLD_SIZE is not set", "MASTER_ADDR is not set", "MASTER_PORT is not set"}},
		{with(full, "RANK", "one"), []string{`RANK="one" is not an integer`}},
		{with(full, "RANK", "4"), []string{"RANK=4 is not below WORLD_SIZE=4"}},
		{with(full, "RANK", "-1"), []string{"RANK=-1 is below 0"}},
		{with(full, "WORLD_SIZE", "0"), []string{"WORLD_SIZE=0 is below 1"}},
		{with(full, "MASTER_PORT", "70000"), []string{"MASTER_PORT=70000 is not a port"}},
		{with(full, "MASTER_PORT", "x"), []string{`MASTER_PORT="x" is not an integer`}},
		{with(full, "LOCAL_RANK", "2"), []string{"LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"}},
		{with(full, "MASTER_ADDR", " "), []string{"MASTER_ADDR is not set"}},
	}
	for _, c := range cases {
		set(c.env)
		_, err := FromEnv()
		require.Error(t, err, "%v", c.env)
		for _, w := range c.want {
			assert.Contains(t, err.Error(), w)
		}
		assert.True(t, strings.HasPrefix(err.Error(), "dist: environment: "), err.Error())
	}
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func TestOptionsChecks(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{WorldSize: 0}, "WorldSize 0"},
		{Options{Rank: 2, WorldSize: 2}, "Rank 2 is not in [0, 2)"},
		{Options{WorldSize: 1, Backend: "mpi"}, `Backend "mpi"`},
		{Options{WorldSize: 1, MasterPort: 70000}, "MasterPort 70000"},
	} {
		_, err := Init(c.o)
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
	}
	if !bridge.BuiltWithCUDA() {
		_, err := Init(Options{WorldSize: 1, Backend: "nccl", MasterPort: freePort(t), Timeout: 5 * time.Second})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "CUDA build")
	}
	assert.Equal(t, "127.0.0.1", Options{MasterAddr: "localhost"}.glooDevice())
	assert.Equal(t, "127.0.0.1", Options{MasterAddr: "127.0.0.2"}.glooDevice())
	assert.Equal(t, "", Options{MasterAddr: "10.1.2.3"}.glooDevice())
	assert.Equal(t, "if:eth1", Options{MasterAddr: "10.1.2.3", Interface: "eth1"}.glooDevice())
}
