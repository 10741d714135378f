package cli

import (
	"fmt"
	"sort"
	"strings"
)

// goCallbacks is the import-path prefix of the built-in callbacks.
const goCallbacks = "github.com/hotcb/hotcb/callbacks/"

// pythonPackage is callbacks.PythonPackage, the Python hotcb package of the built-ins (a test
// checks): package callbacks links libtorch, which hotcb does not.
const pythonPackage = "hotcb.modules.cb.callbacks"

// builtin is one built-in callback as `hotcb init` lists it and `cb load` checks names against.
// The registry alone cannot pair a Go name with its hotcb name, and hotcb does not link the
// built-ins, so this table does; a test checks it against callbacks/all.
type builtin struct {
	id                 string // the id the template gives it
	goPath, goSymbol   string
	pyModule, pySymbol string // under pythonPackage
	init               string // YAML flow mapping
	about              string
	example            bool // commented out in the template (it needs something only the user knows)
}

func (b builtin) pyPath() string { return pythonPackage + "." + b.pyModule }

var builtins = []builtin{
	{id: "timing", goPath: goCallbacks + "timing", goSymbol: "Timing", pyModule: "timing", pySymbol: "TimingCallback",
		init: "{every: 50}", about: "host (and CUDA) time of training events, steps/s, PNG chart at fit_end"},
	{id: "heartbeat", goPath: goCallbacks + "heartbeat", goSymbol: "Heartbeat", pyModule: "heartbeat", pySymbol: "HeartbeatCallback",
		init: "{every: 100}", about: "a log line every N steps"},
	{id: "system_stats", goPath: goCallbacks + "system", goSymbol: "SystemStats", pyModule: "system_stats", pySymbol: "SystemStatsCallback",
		init: "{every: 100}", about: "RSS, Go heap and GC, goroutines, CPU time, CUDA memory"},
	{id: "grad_stats", goPath: goCallbacks + "stats", goSymbol: "GradStats", pyModule: "grad_stats", pySymbol: "GradStatsCallback",
		init: "{every: 50}", about: "gradient norms and statistics per parameter"},
	{id: "tensor_stats", goPath: goCallbacks + "stats", goSymbol: "TensorStats", pyModule: "tensor_stats", pySymbol: "TensorStatsCallback",
		init: "{every: 50, paths: [loss]}", about: "statistics of env tensors by path (loss, outputs, model.<param>)"},
	{id: "jsonl_logger", goPath: goCallbacks + "jsonl", goSymbol: "JSONLLogger", pyModule: "jsonl_logger", pySymbol: "JSONLLoggerCallback",
		init: "{every: 10, paths: [loss]}", about: "env values as JSON lines"},
	{id: "anomaly_guard", goPath: goCallbacks + "guard", goSymbol: "AnomalyGuard", pyModule: "anomaly_guard", pySymbol: "AnomalyGuardCallback",
		init: "{paths: [loss], action: log}", about: "NaN/Inf checks of env paths and gradients: log, disable or stop"},
	{id: "feat_viz", goPath: goCallbacks + "featviz", goSymbol: "FeatureViz", pyModule: "feat_viz", pySymbol: "FeatureVizCallback",
		init: "{every: 100, samples: 2, channels: 16}", about: "feature-map PNG grids of the model's layers (hooks env.Model at load)", example: true},
}

// configTemplate is the hotcb.yaml that `hotcb init` writes: the built-ins loaded but disabled
// (so `hotcb enable ID` turns one on), examples commented out, and whatever else the registry of
// this binary holds (registered: Torch.Registered; none in hotcb) named at the end.
func configTemplate(registered []string) string {
	var sb strings.Builder
	sb.WriteString(`# hotcb.yaml — the callbacks this run should have. The training process reconciles it when the
# file changes, so it can be edited while training runs; hotcb.commands.jsonl acts on top of it.
# An entry: enabled, target {kind: module | go_file, path, symbol}, init (constructor values),
# params (set_params after the load). A built-in is named by its hotcb name (as below) or by its
# Go name (in the comment): both load the same callback.
#
# The built-ins below are loaded disabled: turn one on with 'hotcb enable ID' (or enabled: true
# here) and tune it with 'hotcb cb set_params ID key=value'.
version: 1
callbacks:
`)
	entry := func(prefix string, b builtin, enabled bool) {
		fmt.Fprintf(&sb, "%s%s:  # %s; Go: %s#%s\n", prefix, b.id, b.about, b.goPath, b.goSymbol)
		fmt.Fprintf(&sb, "%s  enabled: %v\n", prefix, enabled)
		fmt.Fprintf(&sb, "%s  target: {kind: module, path: %s, symbol: %s}\n", prefix, b.pyPath(), b.pySymbol)
		fmt.Fprintf(&sb, "%s  init: %s\n", prefix, b.init)
	}
	for _, b := range builtins {
		if !b.example {
			entry("  ", b, false)
		}
	}
	sb.WriteString("\n  # Examples: uncomment to load.\n")
	for _, b := range builtins {
		if b.example {
			entry("  # ", b, true)
		}
	}
	sb.WriteString(`  # grad_norm:  # a callback from a Go source file, interpreted, reloaded when the file changes
  #   enabled: true
  #   target: {kind: go_file, path: examples/callbacks/grad_norm.go, symbol: GradNorm}
  #   init: {every: 10}
`)
	if extra := unlisted(registered); len(extra) > 0 {
		sb.WriteString("\n# Also registered in this binary (target: {kind: module, path: PATH, symbol: SYMBOL}):\n")
		for _, n := range extra {
			sb.WriteString("#   " + n + "\n")
		}
	}
	return sb.String()
}

// unlisted returns the registered path#symbol names that the builtins table does not cover.
func unlisted(registered []string) []string {
	known := builtinNames()
	var out []string
	for _, n := range registered {
		if !known[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// builtinNames are the path#symbol names callbacks.Register gives the built-ins: the Go path,
// hotcb's module path and hotcb's package.
func builtinNames() map[string]bool {
	known := map[string]bool{}
	for _, b := range builtins {
		known[b.goPath+"#"+b.goSymbol] = true
		known[b.pyPath()+"#"+b.pySymbol] = true
		known[pythonPackage+"#"+b.pySymbol] = true
	}
	return known
}

// checkBuiltinTarget refuses a module target that names a built-in package but no callback in it
// — surely a typo. Other paths are the training program's own and only it can resolve them.
func checkBuiltinTarget(path, symbol string) error {
	py := path == pythonPackage || strings.HasPrefix(path, pythonPackage+".")
	if !py && !strings.HasPrefix(path, goCallbacks) {
		return nil
	}
	known := builtinNames()
	if known[path+"#"+symbol] {
		return nil
	}
	var same []string
	for n := range known {
		if p, s, _ := strings.Cut(n, "#"); p == path {
			same = append(same, s)
		}
	}
	if len(same) > 0 {
		sort.Strings(same)
		return usageErr(fmt.Sprintf("no built-in callback %s#%s", path, symbol), "that path has: "+strings.Join(same, ", "))
	}
	var names []string
	for _, b := range builtins {
		if py {
			names = append(names, b.pyPath()+" "+b.pySymbol)
		} else {
			names = append(names, b.goPath+" "+b.goSymbol)
		}
	}
	return usageErr(fmt.Sprintf("no built-in callback under %s", path), "built-ins (--path --symbol): "+strings.Join(names, "; "))
}
