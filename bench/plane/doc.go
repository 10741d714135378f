// Package plane measures hotcb-go's control plane and instrumentation for bench/cmd/benchrun,
// next to the training-step rows of package harness:
//
//   - Apply: the cost of one safe point of the controller and the kernel with 0, 8 and 32 idle
//     compiled callbacks and with one interpreted (go_file) callback, and the metrics stream's
//     cost per training step (MeasureApply);
//   - Latency: from a command line written by the hotcb CLI to the op applied, with a loop
//     stepping every 1 ms and every 100 ms (MeasureLatency);
//   - CLI: the wall time of one hotcb process per command, a write and a read, against hotcb-torch
//     which loads libtorch (MeasureCLI);
//   - Overhead: built-in callbacks on a SmallCNN training step, driven through a kernel the way
//     trainer/ drives them (MeasureOverhead);
//   - Memory: RSS of a fresh child process over a long run with every built-in on
//     (MeasureMemory, RunMemoryChild).
//
// Each returns harness rows with their goals; bench/README.md explains the method.
package plane
