// Package cli is the hotcb command line: cobra commands that drive a training run through its
// run directory — they append hotcb-format commands (cb, opt, loss) to hotcb.commands.jsonl,
// write hotcb.freeze.json, export and check recipes, and read the status snapshot and the
// applied ledger that the training process writes. Everything runs in-process from
// NewRootCommand, so tests execute commands against a temporary run directory; cmd/hotcb is the
// binary. Files in this package add top-level commands with register (see train.go).
package cli
