package dist

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBoardCarriesMessagesInOrder: what rank 0 publishes, a reader gets once, in order, however
// its fetches fall.
func TestBoardCarriesMessagesInOrder(t *testing.T) {
	g, err := Init(Options{Rank: 0, WorldSize: 1, MasterPort: freePort(t), Timeout: 10 * time.Second})
	require.NoError(t, err)
	defer g.Close()
	pub, sub := g.Board("hotcb/ops"), g.Board("hotcb/ops")
	got, err := sub.Fetch()
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, pub.Publish([]byte("a")))
	require.NoError(t, pub.Publish([]byte("b")))
	got, err = sub.Fetch()
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("a"), []byte("b")}, got)
	require.NoError(t, pub.Publish([]byte("c")))
	got, err = sub.Fetch()
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("c")}, got)
	got, err = sub.Fetch()
	require.NoError(t, err)
	require.Empty(t, got)
	// Another board name is another channel.
	other, err := g.Board("other").Fetch()
	require.NoError(t, err)
	require.Empty(t, other)
	require.Equal(t, 0, sub.Rank())
}
