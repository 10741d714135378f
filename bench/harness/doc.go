// Package harness is the measuring side of hotcb-go's benchmarks: it runs a Go body and a
// reference body (a C++ or Python process speaking a one-line JSON protocol, see Ref) in
// alternating rounds, summarises the per-iteration times as median and min–max, and writes a
// report with the machine, library versions and BLAS in use next to each result.
//
// It knows nothing of tensors: callers pass timed bodies (Runner) and describe what they ran
// (Spec), so bench/cmd/benchrun and later benchmarks share one method and one report format.
package harness
