package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hotcb/hotcb/rundir"
)

func init() { register(newLedgerCommand) }

func newLedgerCommand(a *app) *cobra.Command {
	var tail, rank int
	var asJSON, follow bool
	c := &cobra.Command{
		Use:     "ledger",
		Aliases: []string{"log"},
		Short:   "Show the applied ledger: what the process did with each command, and when",
		Long: `ledger prints the last entries of hotcb.applied.jsonl, where the training process records
every op it saw — its sequence number, step, module, op, id, decision (applied, failed,
ignored_freeze, ignored_replay, skipped_noop), source and error. -f keeps printing new entries
as they are written, until interrupted. In a data-parallel run every rank keeps its own ledger
(rank R's under RUN_DIR/ranks/R); --rank picks one.`,
		Example: `  hotcb --dir runs/exp1 ledger
  hotcb --dir runs/exp1 log -f
  hotcb --dir runs/exp1 ledger --tail 0 --json | jq 'select(.decision == "failed")'
  hotcb --dir runs/ddp ledger --rank 1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if tail < 0 {
				return usageErr(fmt.Sprintf("--tail %d is negative", tail), "--tail N shows the last N entries; 0 shows all")
			}
			dir, err := a.runDir()
			if err != nil {
				return err
			}
			if dir, err = rankDir(dir, rank); err != nil {
				return err
			}
			return a.showLedger(cmd, dir.Path(rundir.Applied), tail, asJSON, follow)
		},
	}
	c.Flags().IntVarP(&tail, "tail", "n", 20, "show the last N entries (0: all)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the entries as stored, one JSON object a line")
	c.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing entries as they are appended (until interrupted)")
	c.Flags().IntVar(&rank, "rank", 0, "in a data-parallel run, the rank whose ledger to show")
	return c
}

// rankDir is rank's run directory in dir; a rank that has none is a usage error listing those
// that do.
func rankDir(dir rundir.Dir, rank int) (rundir.Dir, error) {
	ranks := dir.Ranks()
	if rank == 0 {
		return dir, nil
	}
	for _, r := range ranks {
		if r == rank {
			return rundir.Dir(rundir.RankDir(string(dir), rank)), nil
		}
	}
	have := make([]string, len(ranks))
	for i, r := range ranks {
		have[i] = fmt.Sprint(r)
	}
	return "", usageErr(fmt.Sprintf("--rank %d: %s has no rank %d", rank, dir, rank),
		"ranks with a run directory here: "+strings.Join(have, ", "))
}

func (a *app) showLedger(cmd *cobra.Command, path string, tail int, asJSON, follow bool) error {
	r := &lineReader{path: path}
	if err := r.seekTail(tail); err != nil {
		return err
	}
	lines, _, err := r.next()
	if err != nil {
		return err
	}
	if !asJSON {
		if len(lines) == 0 && !follow {
			if r.missing {
				fmt.Fprintf(a.out, "no ledger yet: no training process has written %s\n", path)
			} else {
				fmt.Fprintf(a.out, "the ledger %s is empty\n", path)
			}
			return nil
		}
		fmt.Fprintln(a.out, ledgerHeader)
	}
	a.printLedger(lines, asJSON)
	if !follow {
		return nil
	}
	ctx := cmd.Context()
	t := time.NewTicker(a.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		lines, reset, err := r.next()
		if err != nil {
			return err
		}
		if reset {
			fmt.Fprintf(a.errOut, "hotcb: %s was truncated or replaced; reading it from the start\n", path)
		}
		a.printLedger(lines, asJSON)
	}
}

const ledgerFormat = "%6s  %-8s  %7s  %-6s  %-10s  %-14s  %-14s  %-8s  %s"

var ledgerHeader = strings.TrimRight(fmt.Sprintf(ledgerFormat, "SEQ", "TIME", "STEP", "MODULE", "OP", "ID", "DECISION", "SOURCE", "DETAIL"), " ")

func (a *app) printLedger(lines [][]byte, asJSON bool) {
	for _, l := range lines {
		if asJSON {
			a.out.Write(append(l, '\n'))
			continue
		}
		var e rundir.LedgerEntry
		if err := json.Unmarshal(l, &e); err != nil {
			fmt.Fprintf(a.errOut, "hotcb: skipped an unreadable ledger line (%v): %s\n", err, clip(string(l), 80))
			continue
		}
		fmt.Fprintln(a.out, a.ledgerRow(e))
	}
}

func (a *app) ledgerRow(e rundir.LedgerEntry) string {
	id := "-"
	if e.ID != nil {
		id = *e.ID
	}
	when := "-"
	if e.WallTime > 0 {
		sec, frac := math.Modf(e.WallTime)
		when = time.Unix(int64(sec), int64(frac*1e9)).In(a.loc).Format(time.TimeOnly)
	}
	var detail []string
	if e.Error != nil && *e.Error != "" {
		detail = append(detail, "error: "+oneLine(*e.Error))
	}
	for _, k := range []string{"target", "init", "params", "enabled", "mode"} {
		v, ok := e.Payload[k]
		if !ok {
			continue
		}
		if k == "target" {
			if t, ok := v.(map[string]any); ok {
				detail = append(detail, fmt.Sprintf("%v:%v#%v", t["kind"], t["path"], t["symbol"]))
				continue
			}
		}
		b, _ := json.Marshal(v)
		detail = append(detail, k+" "+string(b))
	}
	if e.Notes != nil && *e.Notes != "" {
		detail = append(detail, "("+*e.Notes+")")
	}
	row := fmt.Sprintf(ledgerFormat, fmt.Sprint(e.Seq), when, fmt.Sprint(e.Step), e.Module, e.Op, id, e.Decision, e.Source,
		strings.Join(detail, " "))
	return strings.TrimRight(row, " ")
}

// lineReader reads the complete lines appended to a file since the last read. A line still being
// written (no newline yet) waits for the next read; a file that shrinks or is replaced is read
// again from its start.
type lineReader struct {
	path    string
	off     int64
	info    os.FileInfo
	missing bool
}

// seekTail positions the reader at the start of the last n complete lines (n == 0: all).
func (r *lineReader) seekTail(n int) error {
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.missing = true
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	r.info = fi
	if n == 0 {
		return nil
	}
	const chunk = 64 << 10
	size := fi.Size()
	pos := size
	end := int64(-1) // just past the last newline
	newlines := 0
	for pos > 0 {
		step := int64(chunk)
		if pos < step {
			step = pos
		}
		part := make([]byte, step)
		if _, err := f.ReadAt(part, pos-step); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		pos -= step
		for i := len(part) - 1; i >= 0; i-- {
			if part[i] != '\n' {
				continue
			}
			at := pos + int64(i)
			if end < 0 {
				end = at + 1 // the newline ending the last complete line
				continue
			}
			newlines++
			if newlines == n {
				r.off = at + 1
				return nil
			}
		}
	}
	r.off = 0
	return nil
}

func (r *lineReader) next() (lines [][]byte, reset bool, err error) {
	f, err := os.Open(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		if !r.missing && r.info != nil {
			r.off, r.info, reset = 0, nil, true
		}
		r.missing = true
		return nil, reset, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if r.info != nil && (!os.SameFile(r.info, fi) || fi.Size() < r.off) {
		r.off, reset = 0, true
	}
	r.info, r.missing = fi, false
	if fi.Size() <= r.off {
		return nil, reset, nil
	}
	buf := make([]byte, fi.Size()-r.off)
	n, err := f.ReadAt(buf, r.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, reset, err
	}
	buf = buf[:n]
	last := bytes.LastIndexByte(buf, '\n')
	if last < 0 {
		return nil, reset, nil
	}
	r.off += int64(last + 1)
	for _, l := range bytes.Split(buf[:last], []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			lines = append(lines, l)
		}
	}
	return lines, reset, nil
}
