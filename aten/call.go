package aten

import (
	"github.com/hotcb/hotcb/aten/atentable"
	"github.com/hotcb/hotcb/bridge"
)

// CheckShim reports whether the libtorch shim was built from the same op table as this package
// (a stale libhotcb_torch.so on the library path would otherwise run other ops under these ids).
// Every generated function checks it at its first call and panics with its error.
func CheckShim() error { return bridge.ATenCheck() }

// call runs generated op id.
func call(args *bridge.ATenArgs, id int32, nout int, res *bridge.ATenResult) {
	bridge.ATenCall(id, args, nout, res, opName)
}

func opName(id int32) string { return atentable.Ops[id].Qualified() }
