// Package gpucheck is hotcb-go's GPU acceptance check, as tests and benchmarks: CUDA tensors and
// device moves through the bridge, a short training on cuda:0 through trainer.Run, CUDA-event
// timing against synchronised wall-clock timing, and feature visualisation (the compiled
// callbacks/featviz and the go_file example) on a CUDA model under a controller.
//
// Without a CUDA device (bridge.CUDAIsAvailable() is false) the checks skip and say why, so the
// package passes in CI on the CPU; GPUCHECK_CPU=1 runs them on the CPU instead (the CUDA-only
// parts still skip). scripts/gpu-check.sh runs the prebuilt test binary on a GPU machine against
// a CUDA shim built there (scripts/build-gpu-bundle.sh makes the bundle) and collects what the
// checks report through GPUCHECK_RESULTS into one JSON file.
package gpucheck
