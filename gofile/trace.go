package gofile

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/token"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/traefik/yaegi/interp"
)

// Where a panic in interpreted code happened.
//
// yaegi (v0.16) recovers a panic in each interpreted function it unwinds, runs that function's
// deferred calls, prints "<line>:<col>: panic: <function>(...)" to the interpreter's standard
// error and panics again. The position it prints is that of the first node the function runs,
// not of the statement that panicked, and the panic value that reaches compiled code says
// nothing about the source. So the source is instrumented before it is interpreted: each
// function gets a package variable, hotcbTraceL<n>, and each statement of a block first stores
// its line there ("hotcbTraceL<n> = <line>; " inserted before it, on its line: line numbers do
// not change, and columns are mapped back in what the interpreter reports; a store to an
// interpreted int allocates nothing). The declarations go after the package clause (the
// import) and at the end of the file (the variables, and a call that hands their addresses to
// the tracer, hotcbTrace.Bind). The tracer is the interpreter's standard error: it takes each
// print as the sign that the function whose body holds the printed position was unwound, and
// reads that function's line. The frames a panic unwound, innermost first, give PanicError its
// file:line.
//
// The variables hold each function's latest line, not each call's: the outer calls of a
// recursive function show as one frame, with the innermost call's line; goroutines the code
// starts share them; and if the code recovers a panic that went through several of its
// functions and then panics again in the same call, the first frames shown may be the earlier
// panic's. yaegi prints the hotcb code around the file (the caller of a constructor) the same
// way, without a file name: such a frame, the outermost of a panic in a constructor, is taken
// for one of the file's if the file has a function at that position.

// Names the instrumentation declares in the file: a source that uses a name with this prefix
// is refused.
const (
	tracePrefix = "hotcbTrace"
	traceImport = tracePrefix // the package of Bind, imported by the file
	tracePkg    = "hotcbtrace"
)

// traceFunc is one function of the file.
type traceFunc struct {
	name       string
	start, end token.Pos // its body
}

// tracer keeps where a panic in one interpreter's code happened. It is that interpreter's
// standard error: yaegi's panic lines are taken, everything else goes on to os.Stderr.
type tracer struct {
	path    string              // the file, as loaded
	file    *token.File         // its positions
	funcs   []traceFunc         // by index, as in hotcbTraceL<index>
	inserts map[int][]insertion // by line, in column order
	lines   []*int              // the variables, bound at load

	mu      sync.Mutex
	unwound []string // "path:line in function" of the frames the panic in progress unwound
	lastFn  int
	out     io.Writer
}

// insertion is text the instrumentation put on a line: n bytes before column col of the file.
type insertion struct{ col, n int }

func newTracer(path string) *tracer {
	return &tracer{path: path, inserts: map[int][]insertion{}, lastFn: -1, out: os.Stderr}
}

// exports is the package the instrumented file imports.
func (t *tracer) exports() interp.Exports {
	return interp.Exports{tracePkg + "/" + tracePkg: {
		"Bind": reflect.ValueOf(func(vars ...*int) bool {
			t.mu.Lock()
			t.lines = vars
			t.mu.Unlock()
			return true
		}),
	}}
}

var panicPrint = []byte(": panic: ")

// Write takes yaegi's "<line>:<col>: panic: <function>(...)" lines: the function of the file
// around that position was unwound, and its variable holds its line. Anything else is the
// interpreted code's own output (package log writes here) and goes to os.Stderr.
func (t *tracer) Write(p []byte) (int, error) {
	line := bytes.TrimSuffix(p, []byte("\n"))
	at := bytes.Index(line, panicPrint)
	if at < 0 || !bytes.HasSuffix(line, []byte("(...)")) || bytes.Contains(line, []byte("\n")) {
		return t.out.Write(p)
	}
	if ln, col, ok := splitPos(string(bytes.TrimPrefix(line[:at], []byte(interp.DefaultSourceName+":")))); ok {
		t.unwind(ln, t.origCol(ln, col))
	}
	return len(p), nil
}

func splitPos(pos string) (line, col int, ok bool) {
	l, c, ok := strings.Cut(pos, ":")
	line, err1 := strconv.Atoi(l)
	col, err2 := strconv.Atoi(c)
	return line, col, ok && err1 == nil && err2 == nil
}

// origCol maps a column of the instrumented text to the file's; a column inside inserted text
// is that of the statement it was inserted before.
func (t *tracer) origCol(line, col int) int {
	shift := 0
	for _, in := range t.inserts[line] {
		start := in.col + shift
		if col < start {
			break
		}
		if col < start+in.n {
			return in.col
		}
		shift += in.n
	}
	return col - shift
}

// filePos rewrites the "line:col" (or "_.go:line:col") an interpreter error starts with into the
// file's "path:line:col".
func (t *tracer) filePos(msg string) string {
	rest := strings.TrimPrefix(msg, interp.DefaultSourceName+":")
	parts := strings.SplitN(rest, ":", 3)
	if len(parts) == 3 {
		if ln, col, ok := splitPos(parts[0] + ":" + parts[1]); ok {
			return fmt.Sprintf("%s:%d:%d:%s", t.path, ln, t.origCol(ln, col), parts[2])
		}
	}
	return t.path + ": " + msg
}

// unwind records the frame of the innermost function whose body holds the file's position
// line:col.
func (t *tracer) unwind(ln, col int) {
	if t.file == nil || ln < 1 || ln > t.file.LineCount() || col < 1 {
		return
	}
	p := t.file.LineStart(ln) + token.Pos(col-1)
	fn := -1
	for i, f := range t.funcs {
		if f.start <= p && p <= f.end && (fn < 0 || f.start >= t.funcs[fn].start) {
			fn = i
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if fn < 0 || fn >= len(t.lines) || fn == t.lastFn {
		return
	}
	t.lastFn = fn
	t.unwound = append(t.unwound, fmt.Sprintf("%s:%d in %s", t.path, *t.lines[fn], t.funcs[fn].name))
}

// reset forgets the frames of an earlier panic; called before each call into the code.
func (t *tracer) reset() {
	t.mu.Lock()
	t.unwound, t.lastFn = t.unwound[:0], -1
	t.mu.Unlock()
}

// frames returns where the panic in progress went through, innermost first.
func (t *tracer) frames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.unwound...)
}

// PanicError is a panic in a go_file callback's code, turned into the error its call returns.
type PanicError struct {
	Value any
	// Frames are where it went through in the source file, innermost first:
	// "path/to/file.go:LINE in (*T).Method". The line is that of the statement that was running.
	Frames []string
	// Stack is the goroutine's stack where the panic was recovered: the interpreter's frames,
	// and those of compiled code the source called.
	Stack []byte
}

func (e *PanicError) Error() string {
	if len(e.Frames) == 0 {
		return fmt.Sprintf("panic: %v", e.Value)
	}
	return fmt.Sprintf("panic at %s: %v", e.Frames[0], e.Value)
}

// Unwrap returns the panic value if it is an error (runtime errors are).
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// panicError makes the PanicError of a recovered value.
func (t *tracer) panicError(r any, stack []byte) *PanicError {
	if v, ok := r.(reflect.Value); ok && v.IsValid() && v.CanInterface() {
		r = v.Interface() // panic(x) in interpreted code
	}
	return &PanicError{Value: r, Frames: t.frames(), Stack: stack}
}

// checkReserved refuses a file that uses the names the instrumentation declares.
func checkReserved(fset *token.FileSet, f *ast.File) error {
	var bad error
	ast.Inspect(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && bad == nil && strings.HasPrefix(id.Name, tracePrefix) {
			bad = fmt.Errorf("%s: the name %s is reserved (names starting with %s locate panics); rename it", fset.Position(id.Pos()), id.Name, tracePrefix)
		}
		return bad == nil
	})
	return bad
}

// instrument returns src (parsed as f with fset) instrumented as the package comment says.
func (t *tracer) instrument(fset *token.FileSet, f *ast.File, src []byte) []byte {
	t.file = fset.File(f.Pos())
	type edit struct {
		off  int
		text string
	}
	var edits []edit
	insert := func(pos token.Pos, text string) {
		p := fset.Position(pos)
		edits = append(edits, edit{p.Offset, text})
		t.inserts[p.Line] = append(t.inserts[p.Line], insertion{p.Column, len(text)})
	}
	for _, d := range f.Decls {
		name, lits := "", 0
		if fd, ok := d.(*ast.FuncDecl); ok {
			name = funcName(fd)
		}
		ast.Inspect(d, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.FuncDecl:
				if n.Body != nil {
					t.function(fset, n.Body, name, insert)
				}
			case *ast.FuncLit:
				lits++
				outer := name
				if outer == "" {
					outer = "glob"
				}
				t.function(fset, n.Body, fmt.Sprintf("%s.func%d", outer, lits), insert)
			}
			return true
		})
	}
	insert(f.Name.End(), fmt.Sprintf("; import %s %q", traceImport, tracePkg))
	sort.SliceStable(edits, func(i, j int) bool { return edits[i].off < edits[j].off })
	for _, ins := range t.inserts {
		sort.SliceStable(ins, func(i, j int) bool { return ins[i].col < ins[j].col })
	}
	var out bytes.Buffer
	last := 0
	for _, e := range edits {
		out.Write(src[last:e.off])
		out.WriteString(e.text)
		last = e.off
	}
	out.Write(src[last:])
	if len(t.funcs) > 0 {
		vars := make([]string, len(t.funcs))
		for i := range vars {
			vars[i] = lineVar(i)
		}
		fmt.Fprintf(&out, "\nvar %s int\n\nvar _ = %s.Bind(&%s)\n", strings.Join(vars, ", "), traceImport, strings.Join(vars, ", &"))
	}
	return out.Bytes()
}

func lineVar(fn int) string { return tracePrefix + "L" + strconv.Itoa(fn) }

// function marks the statements of one function's body: each statement of a block in it (not in
// the functions it declares) gets "hotcbTraceL<n> = <line>; " before it.
func (t *tracer) function(fset *token.FileSet, body *ast.BlockStmt, name string, insert func(token.Pos, string)) {
	fn := len(t.funcs)
	t.funcs = append(t.funcs, traceFunc{name: name, start: body.Lbrace, end: body.Rbrace})
	mark := func(list []ast.Stmt) {
		if len(list) > 0 {
			switch list[0].(type) {
			case *ast.CaseClause, *ast.CommClause: // a switch's or select's clauses: their bodies are marked
				return
			}
		}
		for _, s := range list {
			insert(s.Pos(), fmt.Sprintf("%s = %d; ", lineVar(fn), fset.Position(s.Pos()).Line))
		}
	}
	ast.Inspect(body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false // a function of its own
		case *ast.BlockStmt:
			mark(n.List)
		case *ast.CaseClause:
			mark(n.Body)
		case *ast.CommClause:
			mark(n.Body)
		}
		return true
	})
}

// funcName is a function's name as Go prints it in stacks: F, T.M or (*T).M.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) != 1 {
		return fd.Name.Name
	}
	t := fd.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		return "(*" + recvName(s.X) + ")." + fd.Name.Name
	}
	return recvName(t) + "." + fd.Name.Name
}
