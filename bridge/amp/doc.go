// Package amp is the loss-scaling half of mixed-precision training: GradScaler, with the
// semantics of PyTorch 1.13's torch.cuda.amp.GradScaler.
//
// The other half, autocast, is bridge.Autocast: a scoped call inside which eligible ops run in
// float16 or bfloat16. Float16 gradients underflow; a GradScaler multiplies the loss by a large
// factor before backward, divides the gradients by it again before the optimizer step, skips the
// step when any gradient is infinite or NaN, and adapts the factor: halved after a skipped step,
// doubled after GrowthInterval clean steps in a row.
//
//	scaler, _ := amp.NewGradScaler(amp.DefaultOptions())
//	for ... {
//		var loss *bridge.Tensor
//		_ = bridge.Autocast(bridge.CUDA(0), bridge.Float16, func() { loss = lossOf(model, batch) })
//		scaler.Scale(loss).Backward()
//		_ = scaler.Unscale(opt)                // optional: to clip true gradients
//		optim.ClipGradNorm(opt.Params(), 1, 2)
//		_, _ = scaler.Step(opt)                // skipped if a gradient is inf/NaN
//		_ = scaler.Update()
//		opt.ZeroGrad()
//	}
//
// Scale factor and growth tracker live on the host, not in device tensors as in PyTorch: the
// finite check costs one device-to-host read per Step either way (PyTorch reads found_inf in
// step() too), and Update then needs no device work. The checks and the unscaling are ordinary
// ops (isfinite, all, mul_), so the scaler runs on every device — including the CPU, where
// PyTorch 1.13 has no kernel for its fused _amp_* ops. bfloat16 has float32's range and
// needs no scaler; a disabled scaler (Options.Disabled) passes everything through, so one loop
// serves both.
package amp
