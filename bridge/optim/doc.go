// Package optim updates parameter tensors from their gradients, as torch.optim does: SGD, Adam
// and AdamW with PyTorch 1.13's update formulas, parameter groups, hyper-parameters that can be
// read and changed by name while training runs (what a live control plane calls), gradient
// clipping by total norm, learning-rate schedulers, and optimizer state dicts in PyTorch's layout.
// It works on []*bridge.Tensor and knows nothing of models or modules.
package optim
