// Package timing is hotcb's timing instrument (`timing` / TimingCallback): it timestamps the
// training events it is given (train_step_start, forward_end, backward_end, optimizer_step_end,
// train_step_end by default) and reports each event-to-event interval — data/other, forward,
// backward, optimizer, …, per micro-batch for forward and backward when a step accumulates
// gradients (trainer.StepWith); the step time, steps/s and samples/s —
// rolling mean, p50, p95 and max — as a log line and a JSONL record every N steps, and a PNG
// chart of step time at the end. On a CUDA device it also records CUDA events and reads their
// times once the device has passed them, so host and device time sit side by side without the
// loop ever waiting for the GPU (unless sync is asked for); on the CPU it says it is host only.
package timing
