// Package intake reads a run directory's control inputs for a control loop: it tails
// hotcb.commands.jsonl (by byte offset, resumable after a restart, with a bounded amount of work
// per safe point and rate-limited reports of bad lines), re-reads hotcb.yaml and
// hotcb.freeze.json when their content changes (never through a link, never blocking on a
// FIFO, each read problem reported once), queues ops submitted from other goroutines, and
// watches the files (inotify, with a fallback tick) to know when reading is worth it.
//
// It reads and hands on; it applies nothing. The standalone controller (package controller)
// applies what its Intake reads; the kernel (package kernel) routes it to its modules and
// records it. Both read through this package, so they read the same way.
//
// Threading: Due and the Poll methods run on the training goroutine; Submit and Wake are safe
// from any goroutine.
package intake
