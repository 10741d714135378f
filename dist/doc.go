// Package dist is data-parallel training across processes, on torch.distributed's c10d: the
// TCPStore, Gloo (NCCL in CUDA builds) process groups, and DDP's gradient Reducer, the same C++
// that torch.distributed and torch.nn.parallel.DistributedDataParallel run.
//
// Each process is one rank of a group of Size ranks. Start them all with torchrun's variables
// (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and join:
//
//	opts, err := dist.FromEnv()   // or fill dist.Options yourself
//	g, err := dist.Init(opts)     // returns when every rank has joined (or fails after opts.Timeout)
//	defer g.Close()
//
// Rank 0 serves a key-value store that every rank reaches (g.Store(): Set, Get and Wait with a
// timeout, Add, Delete), and the group runs collectives on tensors in place: AllReduce (Sum, Avg,
// Min, Max, Product), Broadcast, AllGather, Barrier.
//
// # Training with DDP
//
// Build the same model on every rank, wrap it, and train as usual; each rank feeds its own share
// of the data:
//
//	model := models.MLP(784, 128, 10)
//	ddp, err := dist.NewDDP(g, model, dist.DDPOptions{}) // copies rank 0's parameters and buffers to all
//	opt, _ := optim.NewSGD(optim.Params(nn.Parameters(model)...), optim.SGDOptions{LR: 0.1})
//	sampler, _ := data.NewDistributedSampler(ds.Len(), g.Rank(), g.Size(), data.DistributedSamplerOptions{Shuffle: true, Seed: 1})
//	loader, _ := data.NewLoader(ds, data.LoaderOptions{BatchSize: 32, Sampler: sampler}) // 32 per rank
//	for epoch := range epochs {
//		for b := range loader.Epoch(ctx, epoch) {
//			nn.ZeroGrad(model)
//			loss := bridge.CrossEntropy(ddp.Forward(b.X), b.Y)
//			if err := ddp.Backward(loss); err != nil { … } // gradients are now averaged over the ranks
//			opt.Step()
//		}
//	}
//
// ddp.Forward runs model.Forward between the two calls DDP needs around a forward pass; a model
// whose Forward takes or returns more than one tensor calls them itself:
//
//	ddp.BeginForward()             // before the forward pass
//	y, h := model.Forward(x, h0)
//	ddp.EndForward(y, h)           // after it: the next backward pass averages the gradients
//
// The backward pass (ddp.Backward(loss), or loss.Backward() itself) then all-reduces the
// gradients in buckets (1 MiB first, then 25 MiB, as PyTorch) while it is still computing the
// others, and divides them by the number of ranks: every rank ends with the same averaged
// gradients, so the same optimizer step keeps the replicas identical. With a mean loss per rank
// and equal shares, that is the gradient of the mean loss over the global batch (Size times the
// per-rank batch): training matches one process on the global batch, to rounding. A backward
// pass after a forward pass without BeginForward/EndForward (or with grad disabled) accumulates
// local gradients only, as PyTorch's no_sync: to accumulate gradients over micro-batches, run
// all but the last micro-batch's forward pass on the model itself and the last through the DDP;
// its backward pass averages the accumulated sum.
//
// # Communication time
//
// ddp.CommStats() returns c10d's own times of the latest training iteration (its DDP Logger, as
// PyTorch's DistributedDataParallel._get_ddp_logging_data, here collected every iteration; see
// DDPOptions.CommStatsEvery): forward, backward compute, the all-reduce and the part of it that
// overlapped the backward pass, and Wait, the rest — from the last gradient ready to the last
// all-reduce done, the time this rank waited for the network and for slower ranks — with totals
// so far. An iteration is measured when the next forward pass begins, so after a step's backward
// pass the latest is the step before. g.Share(key, v, timeout) compares a number across the
// ranks through the store (each rank's value, NaN and listed as missing for a rank that did not
// publish in time), without a collective that a late rank would hold up: the timing callback
// names the slowest rank with it.
//
// # Failures
//
// Nothing waits without a bound. A peer that dies closes its connections and the collectives of
// the others fail at once; a peer that stops answering makes them fail after Options.Timeout.
// Errors are *Error and say which operation failed on which rank within what timeout. A group
// whose collective failed is broken: every later collective returns that first error; Close it.
//
// The group's rank 0 serves the store: once it closes, the other ranks' store calls fail, so
// finish with a Barrier before Close when the others may still use the store.
package dist
