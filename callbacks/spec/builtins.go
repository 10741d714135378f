package spec

import "github.com/hotcb/hotcb/params"

// The built-ins, each described once. Their packages register them (callbacks.Provide) and
// decode their params (callbacks.Base) from these values.
var (
	Timing = define(Builtin{
		Name: "Timing", Package: "timing", Hotcb: "timing", HotcbSymbol: "TimingCallback",
		Init:  "{every: 50}",
		About: "host (and CUDA) time of training events, steps/s, PNG chart at fit_end",
		Doc: "per event-to-event interval: mean, p50, p95, max over a window, steps/s, samples/s; on CUDA also " +
			"device time from CUDA events read when complete (no sync in the hot path; `sync` opt-in); JSONL + " +
			"PNG chart of step time; in a data-parallel run (`env.Ranks`, WORLD_SIZE > 1) also each rank's " +
			"all-reduce wait per step (c10d's DDP times: the all-reduce not hidden behind the backward pass; " +
			"p50, mean, share of the step) and the slowest rank, by how many ms (compute per step compared " +
			"through the store; a rank that does not answer is named, not waited for): `data_parallel` in " +
			"timing.jsonl",
	}, func() TimingParams {
		return TimingParams{Every: 50, Window: 200,
			Events: []string{"train_step_start", "forward_end", "backward_end", "optimizer_step_end", "train_step_end"},
			Out:    "timing/timing.jsonl"}
	})

	Heartbeat = define(Builtin{
		Name: "Heartbeat", Package: "heartbeat", Hotcb: "heartbeat", HotcbSymbol: "HeartbeatCallback",
		Init:    "{every: 100}",
		About:   "a log line every N steps",
		Doc:     "a log line every N steps for each event it sees, with an optional message: the run and its control plane are alive",
		Options: []params.Option{params.ScalarsAsStrings()},
	}, func() HeartbeatParams { return HeartbeatParams{Every: 50} })

	SystemStats = define(Builtin{
		Name: "SystemStats", Package: "system", Hotcb: "system_stats", HotcbSymbol: "SystemStatsCallback",
		Init:  "{every: 100}",
		About: "RSS, Go heap and GC, goroutines, CPU time, CUDA memory",
		Doc:   "RSS, Go heap and GC, goroutines, CPU time, libtorch memory held by live tensors, CUDA memory on GPU",
	}, func() SystemStatsParams {
		return SystemStatsParams{Every: 100, Event: "train_step_end", OutPath: "system/system_stats.jsonl", Log: true}
	})

	GradStats = define(Builtin{
		Name: "GradStats", Package: "stats", Hotcb: "grad_stats", HotcbSymbol: "GradStatsCallback",
		Init:  "{every: 50}",
		About: "gradient norms and statistics per parameter",
		Doc:   "total grad norm (2 or inf), max |g|, params with grads / with NaN-Inf, optional per-layer norms",
	}, func() GradStatsParams {
		return GradStatsParams{Every: 50, Event: "backward_end", NormType: 2, OutPath: "stats/grad_stats.jsonl", Log: true}
	})

	TensorStats = define(Builtin{
		Name: "TensorStats", Package: "stats", Hotcb: "tensor_stats", HotcbSymbol: "TensorStatsCallback",
		Init:  "{every: 50, paths: [loss]}",
		About: "statistics of env tensors by path (loss, outputs, model.<param>)",
		Doc:   "shape, dtype, mean, std, min, max, NaN/Inf counts of env paths",
	}, func() TensorStatsParams {
		return TensorStatsParams{Every: 50, Paths: []string{"loss", "outputs"}, Event: "train_step_end",
			OutPath: "stats/tensor_stats.jsonl", Log: true}
	})

	JSONLLogger = define(Builtin{
		Name: "JSONLLogger", Package: "jsonl", Hotcb: "jsonl_logger", HotcbSymbol: "JSONLLoggerCallback",
		Init:  "{every: 10, paths: [loss]}",
		About: "env values as JSON lines",
		Doc:   "scalars and tensor summaries at chosen paths to a JSONL file; write errors counted and reported, never fatal",
	}, func() JSONLLoggerParams {
		return JSONLLoggerParams{Every: 1, Paths: []string{"loss", "epoch", "step"}, Events: []string{"train_step_end"},
			OutPath: "logs/metrics.jsonl", TensorStats: true}
	})

	AnomalyGuard = define(Builtin{
		Name: "AnomalyGuard", Package: "guard", Hotcb: "anomaly_guard", HotcbSymbol: "AnomalyGuardCallback",
		Init:  "{paths: [loss], action: log}",
		About: "NaN/Inf checks of env paths and gradients: log, disable or stop",
		Doc:   "NaN/Inf in chosen paths (and grads) → log, disable itself, or `env.RequestStop` (the loop stops cleanly)",
	}, func() AnomalyGuardParams {
		return AnomalyGuardParams{Every: 1, Paths: []string{"loss"}, Event: "train_step_end", Action: "log",
			MaxReports: 100, OutPath: "guard/anomalies.jsonl"}
	})

	FeatureViz = define(Builtin{
		Name: "FeatureViz", Package: "featviz", Hotcb: "feat_viz", HotcbSymbol: "FeatureVizCallback",
		Init:    "{every: 100, samples: 2, channels: 16}",
		About:   "feature-map PNG grids of the model's layers (hooks env.Model at load)",
		Example: true,
		Doc: "forward hooks on chosen layers (globs; default every Conv2d): PNG grids per step and layer " +
			"(viridis, numbered tiles; Linear as a heat strip), optional `.npy`, `index.html` gallery of the " +
			"newest `keep` steps (older frames stay on disk); writing on a background goroutine with a bounded " +
			"queue that drops (and counts) rather than block",
		Options: []params.Option{params.ScalarsAsStrings()},
	}, func() FeatureVizParams {
		return FeatureVizParams{Every: 50, Samples: 1, Channels: 16, Scale: "auto", Out: "featviz", Queue: 8, Keep: 200}
	})
)

// All are the built-ins, in the order `hotcb init` lists them.
var All = []*Builtin{
	Timing.Describe(), Heartbeat.Describe(), SystemStats.Describe(), GradStats.Describe(),
	TensorStats.Describe(), JSONLLogger.Describe(), AnomalyGuard.Describe(), FeatureViz.Describe(),
}
