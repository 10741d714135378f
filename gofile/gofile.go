package gofile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
	stdsyscall "github.com/traefik/yaegi/stdlib/syscall"
	"github.com/traefik/yaegi/stdlib/unrestricted"
	stdunsafe "github.com/traefik/yaegi/stdlib/unsafe"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile/symbols"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// Options configure a Loader.
type Options struct {
	// FullStdlib is the trusted mode: interpreted code may use the whole standard library,
	// os/exec, net, syscall, unsafe and every refused symbol included. By default it gets the
	// allow-list of policy.go.
	FullStdlib bool
	// SourcesDir receives a copy of every loaded source as <sha256>.go ("" disables capture).
	SourcesDir string
	// AllowAnyOwner loads files that are group- or world-writable or owned by another user; by
	// default such files are refused, since whoever can write them can run code in the training.
	AllowAnyOwner bool
	// BuildTimeout bounds the code a load runs — package variables, init functions, the
	// constructor — (default 30s): past it the interpreter is stopped and the load fails, so a
	// loop there cannot hang the safe point that loads the file.
	BuildTimeout time.Duration
}

// Loader builds callbacks from Go source files. It is safe for concurrent use.
type Loader struct{ opts Options }

// NewLoader returns a Loader.
func NewLoader(opts Options) *Loader { return &Loader{opts: opts} }

// Source describes the file an interpreted callback came from.
type Source struct {
	Path         string // the file that was loaded
	SHA256       string
	CapturedPath string // the copy under SourcesDir ("" without capture)
}

// Sourced is implemented by callbacks this package loads.
type Sourced interface{ Source() Source }

// goCallback is an interpreted callback seen through compiled interfaces. Every call goes
// through its guard, which the controller's watchdog reads and can stop (see guard).
type goCallback struct {
	callback.HotCallback
	closer   callback.Closer
	attacher callback.Attacher
	src      Source
	guard    *guard
	trace    *tracer
}

// ErrAbandoned is what an interpreted callback's calls return once it has been abandoned.
var ErrAbandoned = errors.New("abandoned: its interpreter was stopped because a call did not return")

func (g *goCallback) Source() Source { return g.src }

// Each call returns a panic in the interpreted code as a *PanicError that says where in the
// file it happened.
func (g *goCallback) Handle(event string, env *torchenv.Env) (err error) {
	g.guard.enterHandle(event, env)
	defer g.guard.leave()
	defer g.recoverPanic(&err)
	g.trace.reset()
	err = g.HotCallback.Handle(event, env)
	if g.guard.aband.Load() {
		return ErrAbandoned
	}
	return err
}

func (g *goCallback) SetParams(params map[string]any) (err error) {
	g.guard.enter("SetParams", nil)
	defer g.guard.leave()
	defer g.recoverPanic(&err)
	g.trace.reset()
	err = g.HotCallback.SetParams(params)
	if g.guard.aband.Load() {
		return ErrAbandoned
	}
	return err
}

func (g *goCallback) OnAttach(env *torchenv.Env) (err error) {
	if g.attacher == nil {
		return nil
	}
	g.guard.enter("OnAttach", env)
	defer g.guard.leave()
	defer g.recoverPanic(&err)
	g.trace.reset()
	err = g.attacher.OnAttach(env)
	if g.guard.aband.Load() {
		return ErrAbandoned
	}
	return err
}

// Close runs the callback's own Close, then stops its interpreter, which nothing calls again.
func (g *goCallback) Close() (err error) {
	defer g.guard.stop()
	if g.closer == nil || g.guard.aband.Load() {
		return nil
	}
	g.guard.enter("Close", nil)
	defer g.guard.leave()
	defer g.recoverPanic(&err)
	g.trace.reset()
	return g.closer.Close()
}

// recoverPanic, deferred by each call, turns a panic of the interpreted code into its error.
func (g *goCallback) recoverPanic(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if g.guard.aband.Load() {
		*err = ErrAbandoned
		return
	}
	*err = g.trace.panicError(r, debug.Stack())
}

// Running, Abandon and Abandoned implement callback.Abandoner.
func (g *goCallback) Running() (string, int64, time.Time, bool) { return g.guard.running() }
func (g *goCallback) Abandon() bool                             { return g.guard.abandon() }
func (g *goCallback) Abandoned() bool                           { return g.guard.aband.Load() }

// Load implements callback.Loader for go_file targets.
func (l *Loader) Load(t callback.Target, id string, init map[string]any) (callback.HotCallback, error) {
	if !strings.HasSuffix(t.Path, ".go") {
		return nil, fmt.Errorf("%s is not a .go file", t.Path)
	}
	src, _, err := ReadSource(t.Path, l.opts.AllowAnyOwner)
	if err != nil {
		return nil, err
	}
	return l.buildAndCapture(t.Path, src, t.Symbol, id, init)
}

// buildAndCapture builds src (read from path) and captures it under SourcesDir.
func (l *Loader) buildAndCapture(path string, src []byte, symbol, id string, init map[string]any) (*goCallback, error) {
	sum := sha256.Sum256(src)
	info := Source{Path: path, SHA256: hex.EncodeToString(sum[:])}
	cb, err := l.build(path, src, symbol, id, init)
	if err != nil {
		return nil, err
	}
	if l.opts.SourcesDir != "" {
		p, err := Capture(l.opts.SourcesDir, info.SHA256, src)
		if err != nil {
			return nil, fmt.Errorf("capture source of %s: %w", path, err)
		}
		info.CapturedPath = p
	}
	cb.src = info
	return cb, nil
}

var shaHex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CapturePath returns where the capture of the source with this sha256 lives:
// <SourcesDir>/<sha256>.go. The sha256 must be 64 lowercase hex digits.
func (l *Loader) CapturePath(sha string) (string, error) {
	if !shaHex.MatchString(sha) {
		return "", fmt.Errorf("source_capture: sha256 %q is not 64 lowercase hex digits; a replayed go_file load needs the sha256 of the source it captured", sha)
	}
	if l.opts.SourcesDir == "" {
		return "", errors.New("source_capture: no sources directory is set (Options.SourcesDir, hotcb.sources under the kernel), so there is no capture to replay")
	}
	return filepath.Join(l.opts.SourcesDir, sha+".go"), nil
}

// LoadCapture builds a callback from the captured source with this sha256, for replays. It
// reads only <SourcesDir>/<sha256>.go, through ReadSource's checks, verifies the sha256 of the
// bytes it read and builds exactly those bytes. capturedPath, the path recorded with the capture,
// is optional; a relative one is taken from SourcesDir's parent (the run directory). It must
// name that same file, with one exception: another run's capture store — a file <sha256>.go in a
// directory named like SourcesDir (hotcb.sources), reached without ".." — when this run has no
// copy yet (a recipe replayed in a new run directory). That file passes the same checks, its
// sha256 is verified, and it is copied into this run's SourcesDir first. t.Symbol names the
// symbol; t.Path is not read. The callback's Source().Path is the capture in SourcesDir.
func (l *Loader) LoadCapture(t callback.Target, sha, capturedPath, id string, init map[string]any) (callback.HotCallback, error) {
	own, err := l.CapturePath(sha)
	if err != nil {
		return nil, err
	}
	other, err := l.otherCapture(own, sha, capturedPath)
	if err != nil {
		return nil, err
	}
	src, _, err := ReadSource(own, l.opts.AllowAnyOwner)
	if err != nil && other != "" && errors.Is(err, fs.ErrNotExist) {
		// This run has no copy: import the one from the other run's store.
		if src, _, err = ReadSource(other, l.opts.AllowAnyOwner); err == nil {
			if err = verifySHA(other, src, sha); err != nil {
				return nil, err
			}
			if _, err = Capture(l.opts.SourcesDir, sha, src); err != nil {
				return nil, fmt.Errorf("source_capture: copy %s into %s: %w", other, l.opts.SourcesDir, err)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("source_capture: %w", err)
	}
	if err := verifySHA(own, src, sha); err != nil {
		return nil, err
	}
	return l.buildAndCapture(own, src, t.Symbol, id, init)
}

// otherCapture checks the recorded captured path against own (this run's capture): "" when it
// is own or empty, the path when it is another run's capture store, an error otherwise.
func (l *Loader) otherCapture(own, sha, recorded string) (string, error) {
	if recorded == "" {
		return "", nil
	}
	p := recorded
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(l.opts.SourcesDir), p)
	}
	if a, err := filepath.Abs(p); err == nil {
		p = a
	}
	ownAbs, err := filepath.Abs(own)
	if err != nil {
		return "", err
	}
	if p == ownAbs {
		return "", nil
	}
	dotdot := false
	for _, e := range strings.Split(filepath.ToSlash(recorded), "/") {
		dotdot = dotdot || e == ".."
	}
	if !dotdot && filepath.Base(p) == sha+".go" && filepath.Base(filepath.Dir(p)) == filepath.Base(l.opts.SourcesDir) {
		return p, nil
	}
	return "", fmt.Errorf("source_capture: captured_path %q is not the capture of sha256 %s (%s); a replay loads captured sources from the sources directory only", recorded, sha, own)
}

func verifySHA(path string, src []byte, want string) error {
	sum := sha256.Sum256(src)
	if got := hex.EncodeToString(sum[:]); got != want {
		return fmt.Errorf("source_capture: %s has sha256 %s, the record says %s; the capture was altered, refusing it", path, got, want)
	}
	return nil
}

// Capture writes src to dir/<sha>.go (a run's capture store) unless it is there already, and
// returns that path. The kernel stores go_file sources that rank 0 sends with it.
func Capture(dir, sha string, src []byte) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, sha+".go")
	if old, err := os.ReadFile(p); err == nil && string(old) == string(src) {
		return p, nil
	}
	tmp, err := os.CreateTemp(dir, ".capture*")
	if err != nil {
		return "", err
	}
	_, werr := tmp.Write(src)
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), p)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return "", werr
	}
	return p, nil
}

// build checks the source, interprets it in a fresh interpreter and instantiates the symbol.
func (l *Loader) build(path string, src []byte, symbol, id string, init map[string]any) (*goCallback, error) {
	fset := token.NewFileSet()
	// Object resolution lets checkPolicy tell a package name from a local variable.
	file, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		return nil, err // go/parser errors carry path:line:col
	}
	if !l.opts.FullStdlib {
		if err := checkPolicy(fset, file); err != nil {
			return nil, err
		}
	}
	for _, imp := range file.Imports {
		pkg, _ := strconv.Unquote(imp.Path.Value)
		if !available(pkg, l.opts.FullStdlib) {
			return nil, fmt.Errorf("%s: package %q cannot be imported by go_file callbacks (available: the standard library and hotcb's public packages)", fset.Position(imp.Pos()), pkg)
		}
	}
	if err := checkNamedParams(fset, file); err != nil {
		return nil, err
	}
	kind, methods, err := checkSymbol(fset, file, symbol)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	if err := checkReserved(fset, file); err != nil {
		return nil, err
	}

	trace := newTracer(path)
	i := interp.New(interp.Options{Stderr: trace})
	if err := i.Use(stdlibFor(l.opts.FullStdlib)); err != nil {
		return nil, err
	}
	if err := i.Use(symbols.Symbols); err != nil {
		return nil, err
	}
	out := &goCallback{trace: trace}
	var buildErr error
	parked, release := make(chan struct{}), make(chan struct{})
	sink := interp.Exports{"hotcbsink/hotcbsink": {
		"Park":     parkFunc(parked, release),
		"Callback": reflect.ValueOf(func(c callback.HotCallback) { out.HotCallback = c }),
		"Closer":   reflect.ValueOf(func(c callback.Closer) { out.closer = c }),
		"Attacher": reflect.ValueOf(func(a callback.Attacher) { out.attacher = a }),
		"Fail":     reflect.ValueOf(func(err error) { buildErr = err }),
		"Init":     reflect.ValueOf(func() map[string]any { return init }),
	}}
	if err := i.Use(sink); err != nil {
		return nil, err
	}
	// The file is interpreted instrumented to locate panics (trace.go); the positions in errors
	// are mapped back to the file's.
	code := trace.instrument(fset, file, src)
	if err := i.Use(trace.exports()); err != nil {
		return nil, err
	}
	if _, err := l.evalTimed(i, string(code)); err != nil {
		var p interp.Panic
		if errors.As(err, &p) {
			if pe := trace.panicError(p.Value, nil); len(pe.Frames) > 0 {
				return nil, fmt.Errorf("%s: panic: %v", pe.Frames[0], pe.Value)
			}
		}
		return nil, errors.New(trace.filePos(buildError(err).Error()))
	}
	pkg := file.Name.Name
	if _, err := eval(i, `import ("hotcbsink"; "github.com/hotcb/hotcb/callback"; "github.com/hotcb/hotcb/torchenv")`); err != nil {
		return nil, fmt.Errorf("%s: prepare: %v", path, err)
	}
	var inst string
	switch kind {
	case "struct":
		if _, err := eval(i, fmt.Sprintf("var hotcbInst = &%s.%s{}", pkg, symbol)); err != nil {
			return nil, fmt.Errorf("%s: create %s: %v", path, symbol, err)
		}
		v, err := eval(i, "hotcbInst")
		if err != nil {
			return nil, err
		}
		if err := setIDAndInit(v, id, init); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, symbol, err)
		}
		inst = "hotcbInst"
	case "func":
		code := fmt.Sprintf(`var hotcbCtor func(string, map[string]any) (callback.HotCallback, error) = %s.%s`, pkg, symbol)
		if _, err := eval(i, code); err != nil {
			return nil, fmt.Errorf("%s: %s must be func(id string, init map[string]any) (callback.HotCallback, error): %v", path, symbol, err)
		}
		// yaegi hands the result over through a HotCallback wrapper, which hides any other
		// method: constructor-built callbacks get no OnAttach/Close (the struct form does).
		run := fmt.Sprintf(`func hotcbRun() {
	cb, err := %s.%s(%q, hotcbsink.Init())
	if err != nil {
		hotcbsink.Fail(err)
		return
	}
	if cb == nil {
		hotcbsink.Fail(nil)
		return
	}
	hotcbsink.Callback(cb)
}`, pkg, symbol, id)
		if _, err := eval(i, run); err != nil {
			return nil, fmt.Errorf("%s: prepare %s: %v", path, symbol, err)
		}
		trace.reset()
		if _, err := l.evalTimed(i, "hotcbRun()"); err != nil {
			err = buildError(err)
			if loc := trace.frames(); len(loc) > 0 {
				err = fmt.Errorf("%v (at %s)", err, loc[0])
			}
			return nil, fmt.Errorf("%s: %s(%q, init): %v", path, symbol, id, err)
		}
		if buildErr != nil {
			return nil, fmt.Errorf("%s: %s(%q, init): %w", path, symbol, id, buildErr)
		}
		if out.HotCallback == nil {
			return nil, fmt.Errorf("%s: %s(%q, init) returned no callback", path, symbol, id)
		}
		return guarded(i, out, parked, release, path)
	}
	glue := "hotcbsink.Callback(" + inst + ")\n"
	if kind == "struct" {
		if methods["Close"] {
			glue += "hotcbsink.Closer(" + inst + ")\n"
		}
		if methods["OnAttach"] {
			glue += "hotcbsink.Attacher(" + inst + ")\n"
		}
	}
	if _, err := eval(i, glue); err != nil {
		return nil, fmt.Errorf("%s: %s does not satisfy callback.HotCallback: %v", path, symbol, err)
	}
	if out.HotCallback == nil {
		return nil, fmt.Errorf("%s: %s produced no callback", path, symbol)
	}
	return guarded(i, out, parked, release, path)
}

func guarded(i *interp.Interpreter, cb *goCallback, parked, release chan struct{}, path string) (*goCallback, error) {
	g, err := startGuard(i, parked, release)
	if err != nil {
		return nil, fmt.Errorf("%s: prepare the watchdog's stop: %v", path, err)
	}
	cb.guard = g
	return cb, nil
}

// eval runs code in the interpreter, turning an interpreter panic (yaegi has some on unusual
// code) into an error: a bad file must never take the training down.
func eval(i *interp.Interpreter, code string) (v reflect.Value, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the interpreter failed on this code: %v", r)
		}
	}()
	return i.Eval(code)
}

// evalTimed is eval for code that runs the file's own code, bounded by BuildTimeout. A panic
// there is returned as interp.Panic, a time-out as errTimeout.
func (l *Loader) evalTimed(i *interp.Interpreter, code string) (reflect.Value, error) {
	timeout := l.opts.BuildTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	v, err := i.EvalWithContext(ctx, code)
	if ctx.Err() != nil {
		return v, fmt.Errorf("loading it ran for %v without finishing (a loop in a package variable, an init function or the constructor?); its interpreter was stopped", timeout)
	}
	return v, err
}

// buildError words an interpreter panic at load.
func buildError(err error) error {
	var p interp.Panic
	if errors.As(err, &p) {
		return fmt.Errorf("the interpreter failed on this code: %v", p.Value)
	}
	return err
}

// checkSymbol finds symbol in the file and says whether it is a struct type or a function.
func checkSymbol(fset *token.FileSet, f *ast.File, symbol string) (string, map[string]bool, error) {
	var decls []string
	methods := map[string]map[string]bool{}
	var kind string
	var found ast.Node
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv != nil && len(d.Recv.List) == 1 {
				name := recvName(d.Recv.List[0].Type)
				if methods[name] == nil {
					methods[name] = map[string]bool{}
				}
				methods[name][d.Name.Name] = true
				continue
			}
			decls = append(decls, d.Name.Name+" (func)")
			if d.Name.Name == symbol {
				kind, found = "func", d
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					_, isStruct := s.Type.(*ast.StructType)
					what := "type"
					if isStruct {
						what = "struct"
					}
					decls = append(decls, s.Name.Name+" ("+what+")")
					if s.Name.Name == symbol {
						found = s
						if !isStruct {
							return "", nil, fmt.Errorf("%s: %s is a %s type, not a struct type or a constructor function", fset.Position(s.Pos()), symbol, typeKind(s.Type))
						}
						kind = "struct"
					}
				case *ast.ValueSpec:
					for _, n := range s.Names {
						if n.Name == symbol {
							what := "variable"
							if d.Tok == token.CONST {
								what = "constant"
							}
							return "", nil, fmt.Errorf("%s: %s is a %s, not a struct type or a constructor function", fset.Position(n.Pos()), symbol, what)
						}
					}
				}
			}
		}
	}
	if found == nil {
		sort.Strings(decls)
		if len(decls) == 0 {
			return "", nil, fmt.Errorf("no symbol %q: the file declares no types or functions", symbol)
		}
		return "", nil, fmt.Errorf("no symbol %q in the file (it declares: %s)", symbol, strings.Join(decls, ", "))
	}
	if kind == "struct" {
		var missing []string
		for _, m := range []struct{ name, sig string }{
			{"ID", "ID() string"},
			{"Handle", "Handle(event string, env *torchenv.Env) error"},
			{"SetParams", "SetParams(params map[string]any) error"},
		} {
			if !methods[symbol][m.name] {
				missing = append(missing, m.sig)
			}
		}
		if len(missing) > 0 {
			return "", nil, fmt.Errorf("%s: type %s does not implement callback.HotCallback: missing method %s",
				fset.Position(found.Pos()), symbol, strings.Join(missing, ", "))
		}
	}
	if fd, ok := found.(*ast.FuncDecl); ok {
		if fd.Type.Params.NumFields() != 2 || fd.Type.Results.NumFields() != 2 {
			return "", nil, fmt.Errorf("%s: %s must be func(id string, init map[string]any) (callback.HotCallback, error)", fset.Position(fd.Pos()), symbol)
		}
	}
	return kind, methods[symbol], nil
}

// checkNamedParams refuses functions with unnamed parameters: yaegi v0.16 gives such
// parameters wrong frame slots (a method writing a field then panics with a type mismatch), so
// the user gets a clear message instead of a callback that fails at run time.
func checkNamedParams(fset *token.FileSet, f *ast.File) error {
	var bad error
	ast.Inspect(f, func(n ast.Node) bool {
		fd, ok := n.(*ast.FuncDecl)
		if !ok || bad != nil {
			return bad == nil
		}
		for _, p := range fd.Type.Params.List {
			if len(p.Names) == 0 {
				bad = fmt.Errorf("%s: %s: name every parameter (e.g. \"event string, env *torchenv.Env\"); the interpreter mishandles unnamed ones",
					fset.Position(p.Pos()), fd.Name.Name)
				return false
			}
		}
		return true
	})
	return bad
}

func recvName(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return recvName(t.X)
	case *ast.Ident:
		return t.Name
	case *ast.IndexExpr:
		return recvName(t.X)
	}
	return ""
}

func typeKind(e ast.Expr) string {
	switch e.(type) {
	case *ast.InterfaceType:
		return "interface"
	case *ast.FuncType:
		return "function"
	case *ast.MapType:
		return "map"
	case *ast.ArrayType:
		return "slice or array"
	}
	return "non-struct"
}

// setIDAndInit sets the id field and decodes init into the struct behind v (a pointer).
func setIDAndInit(v reflect.Value, id string, init map[string]any) error {
	e := v.Elem()
	idField := -1
	for k := 0; k < e.NumField(); k++ {
		f := e.Type().Field(k)
		if tag, _, _ := strings.Cut(f.Tag.Get("hotcb"), ","); tag == "id" || (tag == "" && f.Name == "Id") {
			if f.Type.Kind() != reflect.String {
				return fmt.Errorf("id field %s must be a string", f.Name)
			}
			idField = k
		}
	}
	if len(init) > 0 {
		if idField >= 0 {
			for k := range init {
				if strings.EqualFold(k, "id") {
					return fmt.Errorf("init key %q: the id comes from the load op, not from init", k)
				}
			}
		}
		if err := params.Decode(init, v.Interface()); err != nil {
			return fmt.Errorf("init: %w", err)
		}
	}
	if idField >= 0 {
		e.Field(idField).SetString(id)
	}
	return nil
}

// stdlibFor returns the standard library symbols interpreted code may use.
func stdlibFor(full bool) interp.Exports {
	if full {
		return fullStdlib
	}
	return restricted
}

// fullStdlib is the trusted mode's table. The tables share packages ("os/os": unrestricted adds
// the real os.Exit to the standard table's), so they are merged symbol by symbol; the later
// table wins.
var fullStdlib = func() interp.Exports {
	out := interp.Exports{}
	for _, t := range []interp.Exports{stdlib.Symbols, stdsyscall.Symbols, stdunsafe.Symbols, unrestricted.Symbols} {
		for k, syms := range t {
			if out[k] == nil {
				out[k] = map[string]reflect.Value{}
			}
			for s, v := range syms {
				out[k][s] = v
			}
		}
	}
	return out
}()

// pkgOf turns a symbol-table key ("net/http/http") into its import path ("net/http").
func pkgOf(key string) string {
	if i := strings.LastIndex(key, "/"); i >= 0 {
		return key[:i]
	}
	return key
}

func available(pkg string, full bool) bool {
	for _, table := range []interp.Exports{stdlibFor(full), symbols.Symbols} {
		for k := range table {
			if pkgOf(k) == pkg {
				return true
			}
		}
	}
	return false
}
