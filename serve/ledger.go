package serve

import (
	"encoding/json"
	"os"
	"sort"
	"sync"

	"github.com/hotcb/hotcb/rundir"
)

// maxLedger bounds the ledger entries kept in memory (the newest are kept).
const maxLedger = 200_000

// ledgerEntry is one line of hotcb.applied.jsonl: the fields the server uses, and the line as
// written (sent to the page unchanged, with the fields this version does not know).
type ledgerEntry struct {
	Seq      int64           `json:"seq"`
	Step     int64           `json:"step"`
	Module   string          `json:"module"`
	Op       string          `json:"op"`
	ID       *string         `json:"id"`
	Decision string          `json:"decision"`
	Source   string          `json:"source"`
	Error    *string         `json:"error"`
	raw      json.RawMessage // the line
}

// ledgerFile tails a run's applied ledger. It is safe for concurrent use.
type ledgerFile struct {
	mu      sync.RWMutex
	t       tail
	entries []ledgerEntry // in file order
	dropped int           // entries dropped from the front (maxLedger)
	bad     int
	maxSeq  int64
	failed  int // entries with decision failed
}

func newLedgerFile(root *os.Root) *ledgerFile {
	return &ledgerFile{t: tail{root: root, name: rundir.Applied}, maxSeq: -1}
}

func (l *ledgerFile) poll() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.t.poll(func() {
		l.entries, l.dropped, l.bad, l.maxSeq, l.failed = nil, 0, 0, -1, 0
	}, func(line []byte) {
		var e ledgerEntry
		if json.Unmarshal(line, &e) != nil {
			l.bad++ // a torn line of a writer that crashed, or not a ledger line
			return
		}
		e.raw = append(json.RawMessage(nil), line...)
		l.entries = append(l.entries, e)
		l.maxSeq = max(l.maxSeq, e.Seq)
		if e.Decision == rundir.DecisionFailed {
			l.failed++
		}
		if len(l.entries) > maxLedger {
			n := len(l.entries) - maxLedger/2
			l.entries = append([]ledgerEntry(nil), l.entries[n:]...)
			l.dropped += n
		}
	})
}

// since returns the entries with seq > seq in file order, at most limit of them (the newest),
// and whether some were left out.
func (l *ledgerFile) since(seq int64, limit int) ([]ledgerEntry, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	// Seqs grow along the file; a restarted writer continues them. Search from the end.
	i := sort.Search(len(l.entries), func(i int) bool { return l.entries[i].Seq > seq })
	out := l.entries[i:]
	cut := false
	if len(out) > limit {
		out, cut = out[len(out)-limit:], true
	}
	return append([]ledgerEntry(nil), out...), cut || (seq < 0 && l.dropped > 0)
}

// summary is the ledger's last seq, how many entries it holds and how many failed.
func (l *ledgerFile) summary() (maxSeq int64, n, failed int) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.maxSeq, len(l.entries) + l.dropped, l.failed
}
