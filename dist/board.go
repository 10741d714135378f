package dist

import (
	"fmt"
	"strconv"
	"time"
)

// Board carries messages from rank 0 to every other rank through the group's store, in the order
// rank 0 published them: what a kernel's control plane needs (kernel.Options.Ranks), so that
// rank 0 alone reads the run directory and every rank applies each op at the same step. Keys
// live under the board's name; the store keeps every message for the group's lifetime.
type Board struct {
	g          *Group
	name       string
	sent, read int64
}

// Board returns the group's board called name (every rank uses the same name).
func (g *Group) Board(name string) *Board { return &Board{g: g, name: name} }

// Rank is this process's rank.
func (b *Board) Rank() int { return b.g.Rank() }

func (b *Board) key(n int64) string { return b.name + "/" + strconv.FormatInt(n, 10) }

// Publish appends msg for the other ranks (rank 0 only). The message is stored before the
// count that makes it visible, so a reader never sees a count without its message.
func (b *Board) Publish(msg []byte) error {
	if b.g.Rank() != 0 {
		return fmt.Errorf("dist: board %s: rank %d publishes, but only rank 0 does", b.name, b.g.Rank())
	}
	n := b.sent + 1
	if err := b.g.Store().Set(b.key(n), msg); err != nil {
		return err
	}
	if _, err := b.g.Store().Add(b.name+"/n", 1); err != nil {
		return err
	}
	b.sent = n
	return nil
}

// Fetch returns what rank 0 published since the last Fetch, in order: one store round trip when
// there is nothing new.
func (b *Board) Fetch() ([][]byte, error) {
	n, err := b.g.Store().Add(b.name+"/n", 0)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for b.read < n {
		timeout := b.g.Timeout()
		if timeout <= 0 || timeout > time.Minute {
			timeout = time.Minute // it was set before the count: this only bounds a broken store
		}
		m, err := b.g.Store().Get(b.key(b.read+1), timeout)
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b.read++
	}
	return out, nil
}
