package bridge

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten/atentable"
)

// A shim generated from another op table is refused, naming both tables, before any op runs
// under a wrong id; the shim this package was built with passes.
func TestShimTableCheck(t *testing.T) {
	require.NoError(t, ATenCheck())
	require.NoError(t, atenTableError(len(atentable.Ops), atentable.Hash))
	err := atenTableError(2100, "00112233aabbccdd")
	require.EqualError(t, err, fmt.Sprintf("torch: aten: the libtorch shim was built from another op table (2100 ops, table 00112233aabbccdd) than this program (%d ops, table %s): rebuild the shim (make shim) or put the matching libhotcb_torch.so first on the library path", len(atentable.Ops), atentable.Hash))
	require.Error(t, atenTableError(len(atentable.Ops), "00112233aabbccdd"), "same count, other table")
	require.Panics(t, func() { atenID("no_such_op", "") })
}
