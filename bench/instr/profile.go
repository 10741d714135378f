package instr

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Fn is a function of a profile: its object file (executable or shared library) and name.
type Fn struct {
	Object string
	Name   string
}

// Profile is a callgrind dump's exclusive cost per function: what each function's own
// instructions cost, its callees excluded (callgrind_annotate's default view).
type Profile struct {
	Dump
	Self map[Fn][]uint64 // one count per event of Dump.Events
}

// ReadProfile reads a callgrind dump's header, totals and exclusive cost per function. It reads
// the format callgrind writes (name compression, the cost line after calls= being the call's
// inclusive cost, which is not the caller's own), for any positions and events.
func ReadProfile(path string) (*Profile, error) {
	d, err := ReadDump(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &Profile{Dump: d, Self: map[Fn][]uint64{}}
	names := map[string]map[string]string{"ob": {}, "fn": {}} // compressed ids → names
	name := func(kind, v string) string {
		v = strings.TrimSpace(v)
		if !strings.HasPrefix(v, "(") {
			return v
		}
		id, rest, ok := strings.Cut(v[1:], ")")
		if !ok {
			return v
		}
		rest = strings.TrimSpace(rest)
		if rest != "" {
			names[kind][id] = rest
			return rest
		}
		if n, ok := names[kind][id]; ok {
			return n
		}
		return "(" + id + ")"
	}
	npos := 1
	var ob, fn string
	skipNext := false // the line after calls= is the call's inclusive cost
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		c := line[0]
		if c >= '0' && c <= '9' || c == '+' || c == '-' || c == '*' {
			if skipNext {
				skipNext = false
				continue
			}
			fs := strings.Fields(line)
			if len(fs) <= npos {
				continue
			}
			xs, err := parseCounts(strings.Join(fs[npos:], " "))
			if err != nil {
				return nil, fmt.Errorf("%s: cost line %q: %w", path, line, err)
			}
			k := Fn{Object: ob, Name: fn}
			acc := p.Self[k]
			for len(acc) < len(xs) {
				acc = append(acc, 0)
			}
			for i, x := range xs {
				acc[i] += x
			}
			p.Self[k] = acc
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "positions" {
				npos = len(strings.Fields(v))
			}
			continue
		}
		switch key {
		case "ob":
			ob = name("ob", val)
		case "fn":
			fn = name("fn", val)
		case "cob":
			name("ob", val) // defines the id
		case "cfn", "cfi", "cfl", "fl", "fi", "fe":
			if key == "cfn" {
				name("fn", val)
			}
		case "calls":
			skipNext = true
		}
	}
	return p, sc.Err()
}
