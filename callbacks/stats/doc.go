// Package stats holds two built-in callbacks that look at numbers while a model trains:
// TensorStats (hotcb's tensor_stats) summarises tensors at env paths — shape, dtype, mean, std,
// min, max, NaN and Inf counts — and GradStats (grad_stats) summarises the model's gradients —
// total norm, largest magnitude, parameters with NaN or Inf gradients, optionally a norm per
// layer. Both report every N steps to the env log and to a JSON-lines file in the run directory,
// and cost a few nanoseconds on the other steps. The reductions run where the tensors live, with
// one copy to the host per report (package summary).
package stats
