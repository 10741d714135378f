// Command instrdiff attributes the difference between two callgrind dumps of the same work, per
// iteration: by object file (the Go executable split by package), then function by function,
// with each function's exclusive instructions (its callees excluded, callgrind_annotate's
// default). It reads the dumps benchrun -sections instr -instr-keep DIR leaves, e.g. the Go and
// the C++ side of one row:
//
//	go run ./bench/cmd/instrdiff -iters 200 DIR/go.PID.PART-01 DIR/cpp.PID.PART-01
//
// -iters divides every count (the window's iterations; the report's "iters"), -n sets how many
// functions are listed and -event which event is compared (Ir, or with -instr-cache D1mr ...).
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hotcb/hotcb/bench/instr"
)

func main() {
	iters := flag.Float64("iters", 1, "iterations in each window: counts are divided by it")
	n := flag.Int("n", 40, "functions to list")
	event := flag.String("event", "Ir", "event to compare")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: instrdiff [-iters N] [-n 40] [-event Ir] DUMP_A DUMP_B")
		os.Exit(2)
	}
	a, err := load(flag.Arg(0), *event)
	if err == nil {
		var b *side
		if b, err = load(flag.Arg(1), *event); err == nil {
			err = report(os.Stdout, a, b, *iters, *n)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "instrdiff:", err)
		os.Exit(1)
	}
}

// side is one dump's cost of one event per function.
type side struct {
	p     *instr.Profile
	total float64
	fns   map[instr.Fn]float64
}

func load(path, event string) (*side, error) {
	p, err := instr.ReadProfile(path)
	if err != nil {
		return nil, err
	}
	i := slices.Index(p.Events, event)
	if i < 0 {
		return nil, fmt.Errorf("%s: no event %s (it has %s)", path, event, strings.Join(p.Events, " "))
	}
	s := &side{p: p, fns: map[instr.Fn]float64{}}
	for k, v := range p.Self {
		if i < len(v) {
			k.Object = group(k)
			s.fns[k] += float64(v[i])
		}
	}
	t, _ := p.Event(event)
	s.total = float64(t)
	return s, nil
}

// group names a function's object: the file's base name, and for a Go executable (a function
// name with a package path) the package too, or "cgo stubs" for the generated C prologues.
func group(f instr.Fn) string {
	base := filepath.Base(f.Object)
	switch {
	case strings.HasPrefix(f.Name, "_cgo_"), strings.Contains(f.Name, "._Cfunc_"), strings.Contains(f.Name, "._Cfunc"):
		return base + ": cgo stubs"
	case strings.HasPrefix(f.Name, "runtime."), strings.HasPrefix(f.Name, "internal/"), strings.HasPrefix(f.Name, "sync"),
		strings.HasPrefix(f.Name, "gosave"), strings.HasPrefix(f.Name, "gogo"):
		return base + ": Go runtime"
	case strings.Contains(f.Name, "/") && strings.Contains(f.Name, "."):
		pkg := f.Name
		if i := strings.Index(pkg[strings.LastIndex(pkg, "/")+1:], "."); i >= 0 {
			pkg = pkg[:strings.LastIndex(pkg, "/")+1+i]
		}
		return base + ": " + pkg
	}
	return base
}

func report(w *os.File, a, b *side, iters float64, n int) error {
	per := func(v float64) string { return fmt.Sprintf("%.0f", v/iters) }
	pct := func(d, base float64) string {
		if base == 0 {
			return "-"
		}
		return fmt.Sprintf("%+.2f%%", 100*d/base)
	}
	for _, s := range []*side{a, b} {
		fmt.Fprintf(w, "%s: %s, thread %d, %s: %s per iteration\n", s.p.Path, s.p.Trigger, s.p.Thread, "total", per(s.total))
	}
	fmt.Fprintf(w, "A − B: %s per iteration (%s of B)\n\n", per(a.total-b.total), pct(a.total-b.total, b.total))

	objs := map[string][2]float64{}
	for k, v := range a.fns {
		o := objs[k.Object]
		o[0] += v
		objs[k.Object] = o
	}
	for k, v := range b.fns {
		o := objs[k.Object]
		o[1] += v
		objs[k.Object] = o
	}
	keys := make([]string, 0, len(objs))
	for k := range objs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y string) int {
		dx, dy := objs[x][0]-objs[x][1], objs[y][0]-objs[y][1]
		return cmpAbs(dx, dy, x, y)
	})
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "A−B\tA\tB\tobject\t")
	for _, k := range keys {
		o := objs[k]
		if math.Abs(o[0]-o[1])/iters < 0.5 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", per(o[0]-o[1]), per(o[0]), per(o[1]), k)
	}
	tw.Flush()
	fmt.Fprintln(w)

	fns := map[instr.Fn][2]float64{}
	for k, v := range a.fns {
		x := fns[k]
		x[0] = v
		fns[k] = x
	}
	for k, v := range b.fns {
		x := fns[k]
		x[1] = v
		fns[k] = x
	}
	list := make([]instr.Fn, 0, len(fns))
	for k := range fns {
		list = append(list, k)
	}
	slices.SortFunc(list, func(x, y instr.Fn) int {
		return cmpAbs(fns[x][0]-fns[x][1], fns[y][0]-fns[y][1], x.Object+x.Name, y.Object+y.Name)
	})
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "A−B\tA\tB\tobject\tfunction (exclusive)")
	for i, k := range list {
		if i >= n {
			break
		}
		x := fns[k]
		name := k.Name
		if len(name) > 120 {
			name = name[:117] + "..."
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", per(x[0]-x[1]), per(x[0]), per(x[1]), k.Object, name)
	}
	return tw.Flush()
}

// cmpAbs orders by decreasing |d|, then by name.
func cmpAbs(dx, dy float64, x, y string) int {
	switch ax, ay := math.Abs(dx), math.Abs(dy); {
	case ax > ay:
		return -1
	case ax < ay:
		return 1
	}
	return strings.Compare(x, y)
}
