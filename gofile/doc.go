// Package gofile loads hotcb callbacks from Go source files at run time: the go_file target
// kind (and hotcb's python_file label on a .go path). The source is interpreted by yaegi in a
// fresh interpreter per load, with the project's public packages (bridge, bridge/nn, torchenv,
// params, callback, ...) and an allow-list of the standard library available (policy.go: the
// packages and symbols that cannot start processes, signal or exit the process, or change
// process-wide runtime state; checked when the file is loaded). Options.FullStdlib, the trusted
// mode, lifts it. The allow-list is not a sandbox: the code runs in the training process.
//
// Sources are read with ReadSource: the file's directories must be safe from other users, and
// the file is opened once, and that descriptor is checked and read.
//
// The symbol of a load names either a struct type — the loader creates it, sets its id field
// (tagged `hotcb:"id"`, or named Id) and decodes init into its exported fields with package
// params — or a constructor `func(id string, init map[string]any) (callback.HotCallback, error)`.
// Interpreter caveats (yaegi v0.16): unexported struct fields appear to reflection as exported
// fields named X<name>, so tag them `hotcb:"-"` to keep them out of init/params decoding; and a
// compiled value does not satisfy an interface declared in the interpreted file.
// Only the struct form can add the optional OnAttach and Close: the interpreter hands a
// constructor's result over as a plain HotCallback. Every load captures the exact bytes as
// <sources>/<sha256>.go so that a replay can use them (Loader.LoadCapture: by sha256, from the
// sources directory only, the bytes verified).
//
// A panic in the interpreted code — panic(x), or a runtime error such as a write to a nil map or
// an index out of range — is returned by the call (Handle, SetParams, OnAttach, Close) as a
// *PanicError that names the file and the line of the statement that panicked, "file.go:LINE in
// (*T).Handle", and the functions of the file it went through; a panic while the file loads fails
// the load with that line. To know the line, the source is instrumented before it is
// interpreted (trace.go): names starting with hotcbTrace are reserved.
package gofile
