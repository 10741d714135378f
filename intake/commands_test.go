package intake

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The bad-line reporter logs ten messages a window, then one summary when the window ends.
func TestBadLinesAreSummarisedPerWindow(t *testing.T) {
	now := time.Unix(0, 0)
	b := badLines{window: 10 * time.Second, burst: 3, now: func() time.Time { return now }}
	var log []string
	add := func(s string) { log = append(log, s) }
	for i := 1; i <= 100; i++ {
		b.report(func() string { return fmt.Sprint("bad ", i) }, add)
		b.flush(add)
	}
	require.Equal(t, []string{"bad 1", "bad 2", "bad 3"}, log)
	now = now.Add(10 * time.Second)
	b.flush(add)
	require.Equal(t, "97 more bad lines skipped in 10s without a message each (the last: bad 100)", log[3])
	b.report(func() string { return "bad 101" }, add)
	require.Equal(t, "bad 101", log[4], "a new window logs again")
	require.Len(t, log, 5)
}
