// Package cli is the hotcb command line: cobra commands that drive a training run through its
// run directory — they append hotcb-format commands (cb, opt, loss) to hotcb.commands.jsonl,
// write hotcb.freeze.json, export and check recipes, and read the status snapshot and the
// applied ledger that the training process writes. Everything runs in-process from
// NewRootCommand, so tests execute commands against a temporary run directory. Files in this
// package add top-level commands with register (see train.go).
//
// The package is pure Go and links no libtorch, so cmd/hotcb, the binary, starts in
// milliseconds. What needs libtorch — train's run, version's libtorch details — is a Torch that
// package cli/torchcli installs (UseTorch) in cmd/hotcb-torch; without one, those commands hand
// the process over to hotcb-torch with the same arguments (HandOff).
package cli
