package spec

// The built-ins' parameters, for init and set_params. The field comments are the parameters' doc
// (Param.Doc reads them from this file); the defaults are in builtins.go. A set_params with a bad
// value is refused as a whole, with an error naming each bad key, and the callback keeps its
// values.

// TimingParams are Timing's parameters.
type TimingParams struct {
	// Every is how many steps apart the summary lines and JSONL records are.
	Every int `hotcb:"every,min=1"`
	// Window is how many recent values the statistics cover.
	Window int `hotcb:"window,min=1,max=1000000"`
	// Events are the events timed; the intervals are between consecutive ones (data/other,
	// forward, backward, optimizer, ...). The last of them in dispatch order (train_step_end by
	// default) closes a step.
	Events []string `hotcb:"events,oneof=train_step_start|forward_end|backward_end|optimizer_step_end|train_step_end|train_batch_end|val_batch_end|epoch_end"`
	// Out is the JSONL file, inside the run directory; the chart goes next to it (.png).
	Out string `hotcb:"out,min=1"`
	// Sync waits for the device at each timed event: exact per-phase device time, at the cost
	// of the overlap between host and device. Off by default; without it timing never blocks.
	// On the CPU it changes nothing: CPU work is done when the call that started it returns.
	Sync bool `hotcb:"sync"`
}

// HeartbeatParams are Heartbeat's parameters.
type HeartbeatParams struct {
	// Every is the step interval: a line for each event of the steps divisible by it.
	Every int64 `hotcb:"every,min=1"`
	// Message is appended to each line.
	Message string `hotcb:"message"`
}

// SystemStatsParams are SystemStats' parameters.
type SystemStatsParams struct {
	// Every reports at the steps that are a multiple of it (env.Step % every == 0).
	Every int `hotcb:"every,min=1"`
	// Event is the event at which to report.
	Event string `hotcb:"event,oneof=fit_start|train_step_start|forward_end|backward_end|optimizer_step_end|train_step_end|train_batch_end|val_batch_end|epoch_end|fit_end"`
	// OutPath is the JSON-lines file, relative to the run directory (it may not leave it).
	OutPath string `hotcb:"out_path,min=1"`
	// Log writes one line per report to the env log as well.
	Log bool `hotcb:"log"`
}

// GradStatsParams are GradStats' parameters.
type GradStatsParams struct {
	// Every reports at the steps that are a multiple of it (env.Step % every == 0).
	Every int `hotcb:"every,min=1"`
	// Event is the event at which to look at the gradients. At backward_end (the default) every
	// gradient of the step is there. A loop that never dispatches backward_end can use
	// "optimizer_step_end" or "train_step_end", which see the gradients only if the optimizer's
	// ZeroGrad has not run yet: hotcb's loop order is ZeroGrad, forward, Backward, Step, so they
	// do; a loop that zeroes after Step (or sets grads to None) shows none, and GradStats then
	// reports 0 parameters with gradients.
	Event string `hotcb:"event,oneof=fit_start|train_step_start|forward_end|backward_end|optimizer_step_end|train_step_end|train_batch_end|val_batch_end|epoch_end|fit_end"`
	// NormType is the norm of the total and per-layer norms: 2 (Euclidean, as
	// clip_grad_norm_'s default) or "inf" (the largest magnitude).
	NormType float64 `hotcb:"norm_type,oneof=2|inf"`
	// PerLayer adds a norm per layer (the parameters of one module: "fc.weight" and "fc.bias"
	// make "fc").
	PerLayer bool `hotcb:"per_layer"`
	// OutPath is the JSON-lines file, relative to the run directory (it may not leave it).
	OutPath string `hotcb:"out_path,min=1"`
	// Log writes one line per report to the env log as well.
	Log bool `hotcb:"log"`
}

// TensorStatsParams are TensorStats' parameters.
type TensorStatsParams struct {
	// Every reports at the steps that are a multiple of it (env.Step % every == 0).
	Every int `hotcb:"every,min=1"`
	// Paths are the env paths to summarise (torchenv.Env.Lookup syntax: "loss", "outputs",
	// "model.fc.weight", "extra.features"). Go numbers found there are reported as a value. A
	// path that does not resolve at a reporting step (outputs not set yet, a typo) is a warning,
	// not a failure: it is logged once per path and listed under "missing" in the record, and
	// the other paths are still reported.
	Paths []string `hotcb:"paths,min=1"`
	// Event is the event at which to report.
	Event string `hotcb:"event,oneof=fit_start|train_step_start|forward_end|backward_end|optimizer_step_end|train_step_end|train_batch_end|val_batch_end|epoch_end|fit_end"`
	// OutPath is the JSON-lines file, relative to the run directory (it may not leave it).
	OutPath string `hotcb:"out_path,min=1"`
	// Log writes one line per report to the env log as well.
	Log bool `hotcb:"log"`
}

// JSONLLoggerParams are JSONLLogger's parameters.
type JSONLLoggerParams struct {
	// Every writes a line at the steps that are a multiple of it (env.Step % every == 0).
	Every int `hotcb:"every,min=1"`
	// Paths are the env paths to record (torchenv.Env.Lookup: "loss", "outputs",
	// "extra.metrics.val_acc", "model.fc.weight.grad" …); each becomes a key of the line.
	// 0-d and one-element tensors are written as numbers (one host copy each), other tensors as
	// a summary object (see TensorStats), Go numbers, strings and bools as they are, maps of them
	// as objects. "step", "epoch" and "phase" are in every line already. A path that does not
	// resolve is left out of the line and logged once (it is not an error).
	Paths []string `hotcb:"paths,min=1"`
	// Events are the events at which a line is written (standard names, at least one).
	Events []string `hotcb:"events,oneof=fit_start|train_step_start|forward_end|backward_end|optimizer_step_end|train_step_end|train_batch_end|val_batch_end|epoch_end|fit_end"`
	// OutPath is the file, relative to the run directory (it may not leave it).
	OutPath string `hotcb:"out_path,min=1"`
	// TensorStats writes tensors with more than one element as {shape, dtype, numel, mean, std,
	// min, max, nan, inf}; false writes shape, dtype and numel only (no device work).
	TensorStats bool `hotcb:"tensor_stats"`
}

// AnomalyGuardParams are AnomalyGuard's parameters.
type AnomalyGuardParams struct {
	// Every checks at the steps that are a multiple of it.
	Every int `hotcb:"every,min=1"`
	// Paths are the env paths to check (torchenv.Env.Lookup syntax): tensors, or Go numbers
	// such as "extra.metrics.val_loss". A path that does not resolve, or holds something else, is
	// skipped (logged once); integer and bool tensors cannot hold NaN and pass. It may be empty
	// only with grads on.
	Paths []string `hotcb:"paths,min=1"`
	// Grads also checks every parameter's gradient (env.Model's, else env.Optimizer's): one
	// reduction per parameter and one host copy in all. At train_step_end the gradients are
	// there in hotcb's loop order (ZeroGrad, forward, Backward, Step).
	Grads bool `hotcb:"grads"`
	// Event is the event at which to check.
	Event string `hotcb:"event,oneof=fit_start|train_step_start|forward_end|backward_end|optimizer_step_end|train_step_end|train_batch_end|val_batch_end|epoch_end|fit_end"`
	// Action is what an anomaly does: "log" logs it (up to max_reports) and keeps checking,
	// "disable" logs the first and disarms the guard until a set_params, "stop" logs and asks
	// the training loop to stop (env.RequestStop).
	Action string `hotcb:"action,oneof=log|disable|stop"`
	// MaxReports caps the anomalies written to the log and the record file (0: no cap); the
	// guard goes on counting, and acting, after it.
	MaxReports int `hotcb:"max_reports,min=0"`
	// OutPath is the JSON-lines file of anomalies, relative to the run directory (it may not
	// leave it); nothing is written while all is well.
	OutPath string `hotcb:"out_path,min=1"`
}

// FeatureVizParams are FeatureViz's parameters.
type FeatureVizParams struct {
	// Every: capture the forward of every N-th step (steps 0, N, 2N, ...).
	Every int `hotcb:"every,min=1"`
	// Layers are module names or glob patterns over the model's dotted names ("features.*",
	// "classifier.1", "features.**"); empty means every Conv2d layer.
	Layers []string `hotcb:"layers"`
	// Samples: the first K samples of the batch.
	Samples int `hotcb:"samples,min=1,max=64"`
	// Channels: at most C channels of a [N, C, H, W] output (heads of [N, heads, T, T]
	// attention weights) are drawn.
	Channels int `hotcb:"channels,min=1,max=1024"`
	// Scale is the integer upscale factor of the maps (the cell size of a heat strip), 1 to 16,
	// or "auto" (maps about 48 pixels on their longer side).
	Scale string `hotcb:"scale"`
	// Out is the output directory, under the run directory.
	Out string `hotcb:"out,min=1"`
	// Npy also writes the captured tensor ([K, all channels, ...], float32) as a .npy file.
	Npy bool `hotcb:"npy"`
	// Queue is how many frames may wait for the writer; more are dropped, never waited for.
	Queue int `hotcb:"queue,min=1,max=4096"`
	// Keep is how many of the newest captured steps index.html lists (and the writer remembers):
	// a long run's gallery and memory stay bounded. Older frames stay on disk.
	Keep int `hotcb:"keep,min=1,max=100000"`
}
