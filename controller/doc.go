// Package controller is hotcb's HotController: the object a training loop calls at every safe
// point (Apply). It applies pending control-plane operations — from the commands file it tails,
// the desired-state YAML it reconciles, and ops submitted from other goroutines, all read
// through package intake — and then dispatches the events to the enabled callbacks in load
// order, isolating their errors and panics. It keeps per-callback status (calls, time, errors,
// bad command lines) and writes it to a status file for the CLI.
//
// Threading: Apply, and every op it applies, runs on the training goroutine; Submit and Status
// are safe from any goroutine. The hot path of Apply with nothing to apply is an atomic load
// and a loop over the enabled callbacks.
package controller
