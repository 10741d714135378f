package aten

import (
	"fmt"
	"sync"

	"github.com/hotcb/hotcb/aten/atentable"
	"github.com/hotcb/hotcb/bridge"
)

var (
	shimOnce sync.Once
	shimErr  error
)

// CheckShim reports whether the libtorch shim was built from the same op table as this package
// (a stale libhotcb_torch.so on the library path would otherwise run other ops under these ids).
// Every generated function calls it once and panics with its error.
func CheckShim() error {
	shimOnce.Do(func() { shimErr = checkTable(bridge.ATenShim()) })
	return shimErr
}

// checkTable compares the shim's op table (count, hash) with this package's.
func checkTable(n int, hash string) error {
	if hash == tableHash && n == len(atentable.Ops) {
		return nil
	}
	return &bridge.Error{Op: "aten", Msg: fmt.Sprintf(
		"the libtorch shim was built from another op table (%d ops, table %s) than this program (%d ops, table %s): rebuild the shim (make shim) or put the matching libhotcb_torch.so first on the library path",
		n, hash, len(atentable.Ops), tableHash)}
}

// call runs generated op id.
func call(args *bridge.ATenArgs, id int32, nout int, res *bridge.ATenResult) {
	if err := CheckShim(); err != nil {
		panic(err)
	}
	bridge.ATenCall(id, args, nout, res, opName)
}

func opName(id int32) string { return atentable.Ops[id].Qualified() }
