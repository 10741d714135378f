package aten

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten/atentable"
)

// A shim generated from another op table is refused, naming both tables, before any op runs
// under a wrong id; the shim this package was built with passes.
func TestShimTableCheck(t *testing.T) {
	require.NoError(t, CheckShim())
	require.NoError(t, checkTable(len(atentable.Ops), tableHash))
	err := checkTable(2100, "00112233aabbccdd")
	require.EqualError(t, err, fmt.Sprintf("torch: aten: the libtorch shim was built from another op table (2100 ops, table 00112233aabbccdd) than this program (%d ops, table %s): rebuild the shim (make shim) or put the matching libhotcb_torch.so first on the library path", len(atentable.Ops), tableHash))
	require.Error(t, checkTable(len(atentable.Ops), "00112233aabbccdd"), "same count, other table")
}
