// Package serve is `hotcb serve`: a web dashboard and HTTP API over one run directory or a
// directory of runs. It tails the files a training process writes — hotcb.metrics.jsonl,
// hotcb.applied.jsonl, hotcb.status.json, timing/timing.jsonl, system/system_stats.jsonl and the
// feature-map PNGs of callbacks/featviz — and pushes "something changed" hints to browsers over
// Server-Sent Events; each browser then asks for what is new since its last step or seq. Long
// series are decimated on the server (min/max buckets) so a response stays small.
//
// Writes go through a Backend, which the CLI provides (cli.ServeBackend): a control on the page
// runs the same code as the hotcb command it stands for, so the line it appends to
// hotcb.commands.jsonl is byte for byte the one the CLI would write. Writes need the token the
// server prints at start (header X-Hotcb-Token), or are off altogether (Config.ReadOnly).
//
// Safety: files are served only from inside a run directory (through os.Root, so neither ".."
// nor a symbolic link leads out of it), request bodies are bounded, a Host header other than the
// served address is refused (DNS rebinding), and every bad request gets a 4xx status with a
// JSON message. The page and its script are embedded (go:embed) and nothing is fetched from
// elsewhere at run time. The package is pure Go; it never links libtorch.
package serve
