// Package kernel is hotcb's integrated mode: HotKernel drives every control-plane op of a run
// directory. It reads hotcb.commands.jsonl, hotcb.yaml and hotcb.freeze.json itself (through
// package intake, as the standalone controller does), routes each op to a module — cb (the
// callback controller, which here polls none of those files), opt (live optimizer
// hyper-parameters), loss (the weights, toggles and ramps of a loss.Loss the loop registers with
// RegisterLoss), core (freeze) or one the user registers — records every processed op in the
// append-only ledger hotcb.applied.jsonl (a commands line that is not an op too, as hotcb's
// decision "ignored", with the reason), honours hotcb.freeze.json (prod freeze, replay of a
// recipe, replay with adjust patches), and exports recipes. What the callback controller does on
// its own is recorded too: a go_file's hot reloads (cb load, source "watch", with the new
// version's sha256; failed ones with the error), and the disable of a callback after its call
// failed (source "auto_disable", the error in the notes: a go_file's panic names its file:line)
// or after the watchdog abandoned it (source "watchdog").
//
// One process drives a run directory at a time (the flock on hotcb.lock). Restart on an
// existing run directory picks up where the previous process stopped, from the ledger alone:
//   - seq continues after the highest seq in the file (a torn last line's included);
//   - every ledger entry carries the kernel's cursor: the last commands line it processed (line
//     number, byte offset after it, SHA-256 of its text) and the SHA-256 of the YAML it last
//     reconciled. Commands after the last cursor — queued while no trainer ran, during start-up,
//     or after the last safe point before a crash — are applied at the first safe point, once.
//     If the line at the cursor is no longer there (file replaced, truncated, rewritten) the file
//     is read from its start, as a live truncation is. An empty ledger reads it from its start;
//     a ledger without cursors (hotcb's, or hotcb-go < 0.2) starts at the end, as before;
//   - the callbacks' final state is restored: one load per callback live at the end, with its
//     last target, init, enabled flag and params, source "restore" (recipes leave those out);
//     a go_file is loaded from the captured copy of the version that ran last (hot reloads are
//     loads from the watcher, source "watch", with the new version's sha256; a reload that
//     failed is not restored) and its file is watched again, so that an edit made since is
//     reloaded at the first safe point; without that copy the file is loaded as it is;
//   - the loss's final state is restored too (it is not in the checkpoint): per loss id, one
//     set_params folding the applied ones (loss.Fold; ramps keep their original steps) and a
//     disable if the handle was disabled, source "restore", at the first safe point — so the
//     loop registers its Loss before that;
//   - the YAML is reconciled only if it changed since that process reconciled it, so it does not
//     undo what commands did on top of it; Options.NoRestore skips the restore and reconciles it.
//
// Optimizer changes are not re-applied: their effect lives in the checkpoint the loop resumes
// from.
//
// The kernel also writes the run's metrics stream, hotcb.metrics.jsonl (package metrics; rank 0
// only; Options.Metrics): a line per training step with what callbacks and the loop reported
// through env.Report, and the loss, learning rates and throughput it reads itself (metrics.go).
package kernel
