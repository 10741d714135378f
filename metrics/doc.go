// Package metrics is a run's metrics stream, RUN_DIR/hotcb.metrics.jsonl: one JSON line per
// training step with the numbers of that step, in the format of hotcb's (Python)
// MetricsCollector, which hotcb's dashboard reads. The kernel writes it for any loop (package
// kernel); `hotcb serve` reads it with Read, Tail and Series. The package is pure Go (no
// libtorch), so the CGO_ENABLED=0 hotcb binary can use it.
//
// # Lines
//
// Each line is what Python's json.dumps writes for hotcb's record — the same keys in the same
// order, the same separators, numbers as Python's repr writes them — followed by hotcb-go's
// extra keys, if any:
//
//	{"step": 120, "epoch": 1, "wall_time": 1767225600.25, "metrics": {"loss": 0.4127, "lr": 0.003, "steps_per_s": 41.5}}
//
// step is the loop's env.Step; epoch its env.Epoch rounded down (hotcb writes an integer);
// wall_time Unix seconds. A value that is not finite is written as the string "NaN",
// "Infinity" or "-Infinity" (Python would write a bare NaN, which is not JSON); Read turns
// them back into numbers. Extra keys: "metrics_at" (decimation, below) and "restart" (restarts,
// below). A reader that does not know them ignores them and still gets every series.
//
// # Cost
//
// Writer.Append formats into a buffer and returns: no system call, no allocation once the
// buffer has grown. A goroutine of the Writer writes the buffer to the file every
// FlushInterval (500 ms) or as soon as FlushLines (256) lines wait, with one write(2) of whole
// lines on an O_APPEND file; nothing is fsynced. A crash of the process loses at most the lines
// of the last FlushInterval; a crash of the machine what the page cache had not written.
//
// # Size: decimation
//
// Every step is written for the first Full steps (10000 by default); from then on the stride
// doubles each time another Full lines have been written at the current stride: step s is
// written when s is a multiple of 2^j, where j = floor(log2(s/Full + 1)). So
// steps [0, Full) are all written, [Full, 3·Full) every 2nd, [3·Full, 7·Full) every 4th, …:
// Full lines per band, about Full·log2(steps/Full + 2) lines in all (10 million steps: about
// 100 000 lines). The rule depends on the step alone, so a restarted process follows it too.
// Always written, whatever the stride: a step the caller marks Keep (the kernel does for values
// reported at val_batch_end, epoch_end and fit_end: validation metrics). A value reported at a
// step the stride skips — a metric reported every 50 steps, say — is not lost: it goes into the
// next line written, and "metrics_at" gives the step it was reported at:
//
//	{"step": 10240, …, "metrics": {"loss": 0.21, "grad_norm": 1.7}, "metrics_at": {"grad_norm": 10201}}
//
// (only the latest such value of a name between two lines is kept). The file is never rotated
// or truncated, so hotcb's dashboard, which follows one file by its offset, keeps working.
//
// # Crashes and restarts
//
// A killed process may leave a torn last line (no newline). Readers skip lines that do not
// parse and never consume an unterminated last line. A Writer opened on an existing file ends
// a torn line with a newline first (the file never shrinks, so offset-following readers are
// not confused), and continues the file by appending.
//
// A run resumed from a checkpoint trains again the steps after the checkpoint that the killed
// process had already written. They are written again, after a restart marker, the first line
// the new process writes:
//
//	{"step": 1000, "epoch": 2, "wall_time": …, "metrics": {}, "restart": {"previous_last_step": 1180}}
//
// The rule for readers: a restart marker at step S supersedes every earlier line at a step ≥ S
// (the values of the steps the killed process trained past its checkpoint are not those of the
// run that goes on). Read and Series apply it, so their series never hold a step twice; a raw
// reader such as hotcb's dashboard shows the redone steps twice. A marker is written at every
// start on a non-empty file, so it also tells where a run was restarted.
//
// # Data-parallel runs
//
// Rank 0 writes the run's stream (the kernel of rank 0); the other ranks write none. Its
// throughput (samples_per_s) counts the samples of all ranks, taken as rank 0's times the
// number of ranks.
package metrics
