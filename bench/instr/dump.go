package instr

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Dump is what one callgrind output file says about itself: which process, part (dump number)
// and thread it is, what triggered it, and the total of every event it counted.
type Dump struct {
	Path    string
	PID     int
	Part    int
	Thread  int
	Trigger string   // "Client Request: LABEL", "Program termination", ...
	Events  []string // "Ir", and with --cache-sim=yes "Dr", "Dw", "I1mr", "D1mr", ...
	Totals  []uint64 // one per event
}

// Event returns the total of one event, and whether the dump counted it.
func (d Dump) Event(name string) (uint64, bool) {
	i := slices.Index(d.Events, name)
	if i < 0 || i >= len(d.Totals) {
		return 0, false
	}
	return d.Totals[i], true
}

// Label is the label of a client request's dump (CALLGRIND_DUMP_STATS_AT), or "".
func (d Dump) Label() string {
	l, ok := strings.CutPrefix(d.Trigger, "Client Request: ")
	if !ok {
		return ""
	}
	return l
}

// ReadDump reads the header and the totals of a callgrind output file.
func ReadDump(path string) (Dump, error) {
	f, err := os.Open(path)
	if err != nil {
		return Dump{}, err
	}
	defer f.Close()
	d := Dump{Path: path}
	var summary []uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		key, val, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(key, " =") {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "pid":
			d.PID, _ = strconv.Atoi(val)
		case "part":
			d.Part, _ = strconv.Atoi(val)
		case "thread":
			d.Thread, _ = strconv.Atoi(val)
		case "desc":
			if t, ok := strings.CutPrefix(val, "Trigger: "); ok {
				d.Trigger = t
			}
		case "events":
			d.Events = strings.Fields(val)
		case "summary", "totals":
			xs, err := parseCounts(val)
			if err != nil {
				return d, fmt.Errorf("%s: %s: %w", path, key, err)
			}
			if key == "summary" {
				summary = xs
			} else {
				d.Totals = xs
			}
		}
	}
	if err := sc.Err(); err != nil {
		return d, fmt.Errorf("%s: %w", path, err)
	}
	if d.Totals == nil {
		d.Totals = summary
	}
	if len(d.Events) == 0 || len(d.Totals) == 0 {
		return d, fmt.Errorf("%s: not a callgrind dump (no events or totals)", path)
	}
	// A dump leaves trailing zero events out.
	for len(d.Totals) < len(d.Events) {
		d.Totals = append(d.Totals, 0)
	}
	return d, nil
}

func parseCounts(s string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Fields(s) {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// FindWindow returns the dump named label among the files dir/name.pid.* (process pid run with
// --callgrind-out-file=dir/name.%p writes its dumps there), and fails unless exactly one
// matches. seen caches what earlier calls read (it may be nil).
func FindWindow(dir, name string, pid int, label string, seen map[string]Dump) (Dump, error) {
	pattern := filepath.Join(dir, fmt.Sprintf("%s.%d.*", name, pid))
	paths, err := filepath.Glob(pattern)
	if err != nil {
		return Dump{}, err
	}
	var found []Dump
	for _, p := range paths {
		d, ok := seen[p]
		if !ok {
			if d, err = ReadDump(p); err != nil {
				continue // a dump being written, or the empty file of a running process
			}
			if seen != nil && d.Label() != "" {
				seen[p] = d
			}
		}
		if d.Label() == label {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return Dump{}, fmt.Errorf("instr: no callgrind dump labelled %q in %s", label, pattern)
	case 1:
		return found[0], nil
	}
	return Dump{}, fmt.Errorf("instr: %d callgrind dumps labelled %q in %s", len(found), label, pattern)
}

// Options are the callgrind settings of a counted process.
type Options struct {
	Valgrind string // the valgrind executable
	Dir      string // where the dumps go
	Name     string // dumps are Dir/Name.PID.PART-THREAD
	// CacheSim adds callgrind's cache simulation (--cache-sim=yes: first-level and last-level
	// misses for instructions, reads and writes), about twice as slow.
	CacheSim bool
}

// Args returns the command line that runs argv under callgrind with o: uninstrumented until a
// window begins, one output file per thread, no per-line or per-instruction detail.
func (o Options) Args(argv ...string) []string {
	args := []string{o.Valgrind, "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
		"--callgrind-out-file=" + filepath.Join(o.Dir, o.Name+".%p"), "--dump-line=no", "--quiet"}
	if o.CacheSim {
		args = append(args, "--cache-sim=yes")
	}
	return append(args, argv...)
}
