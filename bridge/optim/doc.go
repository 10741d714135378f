// Package optim updates parameter tensors from their gradients, as torch.optim does in PyTorch
// 1.13, operation for operation (their steps agree bit for bit): SGD, Adam, AdamW, RMSprop,
// Adagrad, Adadelta, Adamax, NAdam, RAdam, and LBFGS with a closure and an optional strong Wolfe
// line search (StepClosure). Around them: parameter groups; hyper-parameters read and changed by
// name while training runs (what a live control plane calls), each change checked, tried and
// rolled back if libtorch refuses it (trial.go); gradient clipping by total norm or by value;
// learning-rate schedulers — StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR,
// LambdaLR, CyclicLR, OneCycleLR, SequentialLR and ReduceLROnPlateau; and optimizer state dicts,
// flat for bridge.SaveNamed (StateDict, LoadStateDict, which also reads PyTorch's files) and
// with Python's types for torch.optim to load (TorchStateDict).
// It works on []*bridge.Tensor and knows nothing of models or modules.
package optim
