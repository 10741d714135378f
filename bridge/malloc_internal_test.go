package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTuneMalloc(t *testing.T) {
	got := Malloc()
	require.True(t, got.Applied, "the bridge tunes glibc at start: %s", got.Note)
	require.Equal(t, int64(DefaultMallocTrim), got.TrimThreshold)
	require.Equal(t, int64(DefaultMallocMmap), got.MmapThreshold)

	def := tuneMalloc("default")
	require.False(t, def.Applied)
	require.Contains(t, def.Note, "HOTCB_MALLOC=default")

	for _, bad := range []string{"lots", "1,", ",1", "-1,5", "5,0", "1e9,2"} {
		r := tuneMalloc(bad)
		require.False(t, r.Applied, bad)
		require.Contains(t, r.Note, "want \"default\" or TRIM,MMAP", bad)
	}
	r := tuneMalloc("1048576, 4294967296") // beyond what mallopt takes
	require.False(t, r.Applied)
	require.Contains(t, r.Note, "refused")

	// Leave the process as init left it.
	require.True(t, tuneMalloc("").Applied)
}
