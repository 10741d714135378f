package dist

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/internal/torchpy"
)

// pyDDP is the Go ranks' training (roleDDP with the MLP) in PyTorch: the same data set, the same
// per-rank seeds before the model is built, torch.nn.parallel.DistributedDataParallel over Gloo,
// a DistributedSampler with set_epoch, SGD with momentum.
const pyDDP = `
import json, os, sys
import torch, torch.distributed as dist, torch.nn as nn, torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
a = json.loads(sys.argv[1])
torch.set_num_threads(1)
dist.init_process_group("gloo")  # env://: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
rank = dist.get_rank()
torch.manual_seed(1234)
ds = TensorDataset(torch.randn(a["N"], 1, 4, 4), torch.randint(0, 4, (a["N"],)))
torch.manual_seed(a["Seed"] + rank)
model = nn.Sequential(nn.Flatten(), nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 4))
ddp = DDP(model)
opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
sampler = DistributedSampler(ds, shuffle=True, seed=a["Seed"])
loader = DataLoader(ds, batch_size=a["Batch"], sampler=sampler)
losses = []
for epoch in range(a["Epochs"]):
    sampler.set_epoch(epoch)
    for x, y in loader:
        opt.zero_grad()
        loss = F.cross_entropy(ddp(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
params = {n: p.detach().flatten().double().tolist() for n, p in model.named_parameters()}
with open(sys.argv[2], "w") as f:
    json.dump({"Losses": losses, "Params": params}, f)
dist.barrier()
dist.destroy_process_group()
`

// TestDDPMatchesPyTorchDDP trains the same MLP on 2 ranks in Go and in PyTorch (DDP, Gloo,
// DistributedSampler) and compares every rank's losses and the final parameters.
func TestDDPMatchesPyTorchDDP(t *testing.T) {
	py := torchpy.Interpreter(t)
	a := ddpArg{Model: "mlp", N: 48, Batch: 6, Epochs: 2, Seed: 7}
	arg, err := json.Marshal(a)
	require.NoError(t, err)

	start := time.Now()
	j := startRanks(t, "ddp", 2, testTimeout, a)
	j.wait(3 * time.Minute)
	var goRes []ddpResult
	j.requireOK(&goRes)
	goTook := time.Since(start)

	// PyTorch's ranks, started the way torchrun would (its launcher does not start under this
	// Python 3.11: set the variables per process).
	start = time.Now()
	dir := t.TempDir()
	port := freePort(t)
	var wg sync.WaitGroup
	outs := make([][]byte, 2)
	errs := make([]error, 2)
	for r := 0; r < 2; r++ {
		cmd := exec.Command(py, "-c", pyDDP, string(arg), filepath.Join(dir, fmt.Sprintf("py%d.json", r)))
		cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(r), "WORLD_SIZE=2", "LOCAL_RANK="+strconv.Itoa(r),
			"LOCAL_WORLD_SIZE=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "GLOO_SOCKET_IFNAME=lo",
			"OMP_NUM_THREADS=1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[r], errs[r] = cmd.CombinedOutput()
		}()
	}
	wg.Wait()
	for r := 0; r < 2; r++ {
		require.NoError(t, errs[r], "python rank %d:\n%s", r, outs[r])
	}
	pyTook := time.Since(start)

	worst := 0.0
	for r := 0; r < 2; r++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("py%d.json", r)))
		require.NoError(t, err)
		var pyRes ddpResult
		require.NoError(t, json.Unmarshal(b, &pyRes))
		require.Len(t, pyRes.Losses, len(goRes[r].Losses))
		for s := range pyRes.Losses {
			d := math.Abs(goRes[r].Losses[s]-pyRes.Losses[s]) / math.Max(1, math.Abs(pyRes.Losses[s]))
			worst = math.Max(worst, d)
			assert.Less(t, d, ddpTol, "rank %d step %d loss: go %v, pytorch %v", r, s, goRes[r].Losses[s], pyRes.Losses[s])
		}
		require.Len(t, pyRes.Params, len(goRes[r].Params))
		for name, want := range pyRes.Params {
			d := maxRelDiff(goRes[r].Params[name], want)
			worst = math.Max(worst, d)
			assert.Less(t, d, ddpTol, "rank %d %s", r, name)
		}
	}
	t.Logf("2 ranks, %d steps: hotcb %v, PyTorch %v (process start included); worst relative difference %.2g",
		len(goRes[0].Losses), goTook.Round(time.Millisecond), pyTook.Round(time.Millisecond), worst)
}
