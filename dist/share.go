package dist

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"time"
)

// sharePrefix is where Share keeps its values in the store.
const sharePrefix = "hotcb/share/"

// Share publishes v under key and returns every rank's value under the same key (vals[r] is
// rank r's), waiting at most timeout for the others to publish theirs: it compares a number
// across the ranks at a point they all reach (name the key by the step) through the store,
// without a collective, so that a rank that is late or gone does not hold the others. A rank
// that has not published by the timeout is NaN in vals and listed in missing; err is a failure
// of the store itself (rank 0 gone). Each rank deletes its own values two Shares later.
func (g *Group) Share(key string, v float64, timeout time.Duration) (vals []float64, missing []int, err error) {
	if timeout <= 0 {
		return nil, nil, &Error{Op: "share", Rank: g.rank, Msg: fmt.Sprintf("share(%q): the timeout must be positive", key)}
	}
	keyOf := func(r int) string { return sharePrefix + key + "/" + strconv.Itoa(r) }
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
	own := keyOf(g.rank)
	if err := g.store.Set(own, b[:]); err != nil {
		return nil, nil, err
	}
	g.mu.Lock()
	g.shared = append(g.shared, own)
	var old []string
	if n := len(g.shared); n > 2 {
		old = append(old, g.shared[:n-2]...)
		g.shared = append(g.shared[:0], g.shared[n-2:]...)
	}
	g.mu.Unlock()
	for _, k := range old { // a rank still two Shares behind finds them gone: this rank is missing there
		if _, err := g.store.Delete(k); err != nil {
			return nil, nil, err
		}
	}
	keys := make([]string, g.size)
	for r := range keys {
		keys[r] = keyOf(r)
	}
	all := g.store.Wait(timeout, keys...) == nil
	vals = make([]float64, g.size)
	for r, k := range keys {
		if r == g.rank {
			vals[r] = v
			continue
		}
		if !all {
			ok, err := g.store.Check(k)
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				vals[r] = math.NaN()
				missing = append(missing, r)
				continue
			}
		}
		got, err := g.store.Get(k, timeout)
		if err != nil {
			return nil, nil, err
		}
		if len(got) != 8 {
			return nil, nil, &Error{Op: "share", Rank: g.rank, Msg: fmt.Sprintf("share(%q): rank %d's value is %d bytes, not 8", key, r, len(got))}
		}
		vals[r] = math.Float64frombits(binary.LittleEndian.Uint64(got))
	}
	return vals, missing, nil
}
