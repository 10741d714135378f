// Package timing is hotcb's timing instrument (`timing` / TimingCallback): it timestamps the
// training events it is given (train_step_start, forward_end, backward_end, optimizer_step_end,
// train_step_end by default) and reports each event-to-event interval — data/other, forward,
// backward, optimizer, …, per micro-batch for forward and backward when a step accumulates
// gradients (trainer.StepWith); the step time, steps/s and samples/s —
// rolling mean, p50, p95 and max — as a log line and a JSONL record every N steps, and a PNG
// chart of step time at the end. On a CUDA device it also records CUDA events and reads their
// times once the device has passed them, so host and device time sit side by side without the
// loop ever waiting for the GPU (unless sync is asked for); on the CPU it says it is host only.
// Every step it also reports its host times to the run's metrics stream (env.Report, package
// metrics): MetricStep ("time/step_ms") and "time/<interval>_ms" per interval, the
// micro-batches of a step summed.
//
// In a data-parallel run (env.Ranks set: the trainer with WORLD_SIZE > 1) each record also says,
// over the steps since the previous record (DataParallel, "data_parallel" in the JSONL), how
// long this rank's backward passes waited for the gradient all-reduce per step — c10d's DDP
// times: the all-reduce less its overlap with the backward pass; p50, mean and its share of
// the step — and which rank is the slowest: every rank publishes its compute time per step (the
// step time less that wait) through the store under a key named by the step, and the record
// names the rank with the most and by how much it exceeds the fastest. A rank that does not
// answer within a short timeout (1 s + 4 max steps) is listed as missing, not waited for. A
// step's wait is measured when the next step's forward pass begins, so a record's waits are
// those of the steps before its last. In one process nothing changes.
package timing
