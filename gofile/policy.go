package gofile

import (
	"fmt"
	"go/ast"
	"go/token"
	"reflect"
	"strconv"
	"strings"

	"github.com/traefik/yaegi/interp"
	"github.com/traefik/yaegi/stdlib"
)

// The default standard library of go_file callbacks is an allow-list: the packages below, and
// of a few packages only the symbols listed. Everything else — a package or a symbol that is not
// listed — is refused when the file is loaded, with the position and the reason. The aim is that
// an allowed symbol cannot start a process, send or swallow a signal, exit the process, or change
// a process-wide runtime setting or limit. It is not a sandbox: the code runs in the training
// process, can loop forever, allocate memory, write any file the user can write, and crash the
// process in the ways any Go code can (a panic in a goroutine it starts, unbounded recursion).
// Options.FullStdlib (the trusted mode) lifts every rule in this file.

// Why symbols and packages are refused; each error quotes one of these.
const (
	whySpawn     = "it can start processes"
	whySignal    = "it can send signals to processes, this one included"
	whySignals   = "it can send signals or change how the process handles them (Ctrl-C included)"
	whyExit      = "it can exit the process"
	whyRuntime   = "it changes a process-wide runtime setting or limit"
	whyGoexit    = "it ends the calling goroutine, which is the training loop's"
	whyThread    = "it changes the OS-thread locking the bridge relies on (bridge.Scope locks and unlocks in pairs)"
	whyCrash     = "it stops the process with a trap"
	whyCwd       = "it changes the working directory of the whole process"
	whyEnv       = "the environment belongs to the whole process"
	whyFD        = "it adopts any open descriptor of the process, the trainer's own files included"
	whyProfile   = "it takes over process-wide profiling or tracing"
	whyFinalizer = "it changes how objects are freed, the bridge's tensors included"
	whyLogger    = "it returns a *log.Logger, whose Fatal methods exit the process"
	whyDefault   = "it replaces the process-wide default logger"
	whyRand      = "it reseeds the process-wide random source the trainer may use"
	whyMemory    = "it can reinterpret memory as another type and break memory safety"
	whyNetwork   = "it can open network connections"
	whyInterp    = "it exposes the interpreter's full symbol tables, os.Exit and os.StartProcess included"
	whyNotListed = "it is not on go_file's allow-list"
)

// allowedPackages may be imported and used in full.
var allowedPackages = []string{
	"archive/tar", "archive/zip",
	"bufio", "bytes", "cmp",
	"compress/bzip2", "compress/flate", "compress/gzip", "compress/lzw", "compress/zlib",
	"container/heap", "container/list", "container/ring",
	"context",
	"crypto", "crypto/aes", "crypto/cipher", "crypto/des", "crypto/dsa", "crypto/ecdh",
	"crypto/ecdsa", "crypto/ed25519", "crypto/elliptic", "crypto/hmac", "crypto/md5",
	"crypto/rand", "crypto/rc4", "crypto/rsa", "crypto/sha1", "crypto/sha256", "crypto/sha512",
	"crypto/subtle", "crypto/x509", "crypto/x509/pkix",
	"encoding", "encoding/ascii85", "encoding/asn1", "encoding/base32", "encoding/base64",
	"encoding/binary", "encoding/csv", "encoding/gob", "encoding/hex", "encoding/json",
	"encoding/pem", "encoding/xml",
	"errors", "fmt",
	"go/ast", "go/build/constraint", "go/constant", "go/doc", "go/doc/comment", "go/format",
	"go/parser", "go/printer", "go/scanner", "go/token", "go/types", "go/version",
	"hash", "hash/adler32", "hash/crc32", "hash/crc64", "hash/fnv", "hash/maphash",
	"html",
	"image", "image/color", "image/color/palette", "image/draw", "image/gif", "image/jpeg", "image/png",
	"index/suffixarray",
	"io", "io/fs", "io/ioutil",
	"maps", "math", "math/big", "math/bits", "math/cmplx", "math/rand/v2",
	"mime", "mime/multipart", "mime/quotedprintable",
	"os/user",
	"path", "path/filepath",
	"regexp", "regexp/syntax",
	"runtime/metrics",
	"slices", "sort", "strconv", "strings", "sync", "sync/atomic",
	"testing/fstest", "testing/iotest", "testing/quick", "testing/slogtest",
	"text/scanner", "text/tabwriter", "text/template/parse",
	"time",
	"unicode", "unicode/utf16", "unicode/utf8",
}

// partialPackage is a package of which only the allowed symbols may be used. Every symbol of
// the interpreter's table is either allowed or refused with its reason (a test checks this), so
// that each decision is written down here.
type partialPackage struct {
	allow  []string
	refuse map[string]string // symbol -> why
}

var partialPackages = map[string]partialPackage{
	"os": {
		allow: []string{
			// files and directories
			"Chmod", "Chown", "Chtimes", "Create", "CreateTemp", "DirFS", "Lchown", "Link", "Lstat",
			"Mkdir", "MkdirAll", "MkdirTemp", "Open", "OpenFile", "Pipe", "ReadDir", "ReadFile",
			"Readlink", "Remove", "RemoveAll", "Rename", "SameFile", "Stat", "Symlink", "Truncate",
			"WriteFile", "File", "FileInfo", "FileMode", "DirEntry",
			"O_APPEND", "O_CREATE", "O_EXCL", "O_RDONLY", "O_RDWR", "O_SYNC", "O_TRUNC", "O_WRONLY",
			"SEEK_CUR", "SEEK_END", "SEEK_SET", "DevNull", "PathListSeparator", "PathSeparator",
			"ModeAppend", "ModeCharDevice", "ModeDevice", "ModeDir", "ModeExclusive", "ModeIrregular",
			"ModeNamedPipe", "ModePerm", "ModeSetgid", "ModeSetuid", "ModeSocket", "ModeSticky",
			"ModeSymlink", "ModeTemporary", "ModeType", "Stdin", "Stdout", "Stderr",
			// errors
			"ErrClosed", "ErrDeadlineExceeded", "ErrExist", "ErrInvalid", "ErrNoDeadline", "ErrNotExist",
			"ErrPermission", "ErrProcessDone", "IsExist", "IsNotExist", "IsPathSeparator", "IsPermission",
			"IsTimeout", "LinkError", "PathError", "SyscallError", "NewSyscallError",
			// queries (the interpreter gives each callback an environment of its own, empty)
			"Args", "Environ", "Executable", "Expand", "ExpandEnv", "Getegid", "Getenv", "Geteuid",
			"Getgid", "Getgroups", "Getpagesize", "Getpid", "Getppid", "Getuid", "Getwd", "Hostname",
			"LookupEnv", "TempDir", "UserCacheDir", "UserConfigDir", "UserHomeDir",
		},
		refuse: map[string]string{
			"Exit": whyExit, "StartProcess": whySpawn, "ProcAttr": whySpawn,
			"FindProcess": "it returns a handle that can signal or kill any process, this one included",
			"Process":     whySignal, "ProcessState": whySpawn, "Kill": whySignal, "Interrupt": whySignal, "Signal": whySignal,
			"Chdir": whyCwd, "Setenv": whyEnv, "Unsetenv": whyEnv, "Clearenv": whyEnv, "NewFile": whyFD,
		},
	},
	"runtime": {
		allow: []string{
			"Caller", "Callers", "CallersFrames", "Compiler", "FuncForPC", "GC", "GOARCH", "GOOS",
			"GOROOT", "Gosched", "KeepAlive", "NumCPU", "NumCgoCall", "NumGoroutine", "ReadMemStats",
			"Stack", "Version", "MemProfileRate", "BlockProfile", "GoroutineProfile", "MemProfile",
			"MutexProfile", "ThreadCreateProfile", "BlockProfileRecord", "Error", "Frame", "Frames",
			"Func", "MemProfileRecord", "MemStats", "PanicNilError", "StackRecord", "TypeAssertionError",
		},
		refuse: map[string]string{
			"Goexit": whyGoexit, "GOMAXPROCS": whyRuntime, "LockOSThread": whyThread, "UnlockOSThread": whyThread,
			"Breakpoint": whyCrash, "SetFinalizer": whyFinalizer, "Pinner": whyFinalizer,
			"SetBlockProfileRate": whyProfile, "SetCPUProfileRate": whyProfile, "SetMutexProfileFraction": whyProfile,
			"CPUProfile": whyProfile, "StartTrace": whyProfile, "StopTrace": whyProfile, "ReadTrace": whyProfile,
			"SetCgoTraceback": whyRuntime,
		},
	},
	"runtime/debug": {
		allow: []string{"Stack", "PrintStack", "ReadBuildInfo", "ParseBuildInfo", "ReadGCStats", "FreeOSMemory",
			"BuildInfo", "BuildSetting", "GCStats", "Module"},
		refuse: map[string]string{
			"SetMaxStack": whyRuntime, "SetGCPercent": whyRuntime, "SetMemoryLimit": whyRuntime,
			"SetMaxThreads": whyRuntime, "SetPanicOnFault": whyRuntime, "SetTraceback": whyRuntime,
			"WriteHeapDump": "it stops the process to dump its heap into any open descriptor",
		},
	},
	"runtime/pprof": {
		allow:  []string{"Lookup", "Profiles", "Profile", "WriteHeapProfile", "Label", "Labels", "LabelSet", "WithLabels", "ForLabels"},
		refuse: map[string]string{"StartCPUProfile": whyProfile, "StopCPUProfile": whyProfile, "NewProfile": whyProfile, "SetGoroutineLabels": whyProfile, "Do": whyProfile},
	},
	"log": {
		// Under the interpreter the package-level logger is the callback's own, so its setters
		// are harmless, and log.New returns a logger whose Fatal methods panic instead of
		// exiting; log.Default is the process's logger, whose Fatal methods exit.
		allow: []string{"Print", "Printf", "Println", "Panic", "Panicf", "Panicln", "Output", "Flags", "Prefix",
			"Writer", "SetFlags", "SetOutput", "SetPrefix", "New", "Logger",
			"Ldate", "Ltime", "Lmicroseconds", "Llongfile", "Lshortfile", "LUTC", "Lmsgprefix", "LstdFlags"},
		refuse: map[string]string{"Fatal": whyExit, "Fatalf": whyExit, "Fatalln": whyExit, "Default": whyLogger},
	},
	"log/slog": {
		allow: []string{
			"Any", "AnyValue", "Bool", "BoolValue", "Debug", "DebugContext", "Default", "Duration", "DurationValue",
			"Error", "ErrorContext", "Float64", "Float64Value", "Group", "GroupValue", "Info", "InfoContext", "Int",
			"Int64", "Int64Value", "IntValue", "KindAny", "KindBool", "KindDuration", "KindFloat64", "KindGroup",
			"KindInt64", "KindLogValuer", "KindString", "KindTime", "KindUint64", "LevelDebug", "LevelError",
			"LevelInfo", "LevelKey", "LevelWarn", "Log", "LogAttrs", "MessageKey", "New", "NewJSONHandler",
			"NewRecord", "NewTextHandler", "SourceKey", "String", "StringValue", "Time", "TimeKey", "TimeValue",
			"Uint64", "Uint64Value", "Warn", "WarnContext", "With", "Attr", "Handler", "HandlerOptions",
			"JSONHandler", "Kind", "Level", "LevelVar", "Leveler", "LogValuer", "Logger", "Record", "Source",
			"TextHandler", "Value",
		},
		refuse: map[string]string{"NewLogLogger": whyLogger, "SetDefault": whyDefault, "SetLogLoggerLevel": whyDefault},
	},
	"math/rand": {
		allow: []string{"ExpFloat64", "Float32", "Float64", "Int", "Int31", "Int31n", "Int63", "Int63n", "Intn",
			"New", "NewSource", "NewZipf", "NormFloat64", "Perm", "Read", "Shuffle", "Uint32", "Uint64",
			"Rand", "Source", "Source64", "Zipf"},
		refuse: map[string]string{"Seed": whyRand},
	},
	"reflect": {
		// Allowed for code like examples/callbacks/feat_viz.go. Reflection calls methods by name,
		// past this file's checks: see the README on what the allow-list does not cover.
		allow: []string{
			"Append", "AppendSlice", "Array", "ArrayOf", "Bool", "BothDir", "Chan", "ChanOf", "Complex128",
			"Complex64", "Copy", "DeepEqual", "Float32", "Float64", "Func", "FuncOf", "Indirect", "Int", "Int16",
			"Int32", "Int64", "Int8", "Interface", "Invalid", "MakeChan", "MakeFunc", "MakeMap", "MakeMapWithSize",
			"MakeSlice", "Map", "MapOf", "New", "Pointer", "PointerTo", "Ptr", "PtrTo", "RecvDir", "Select",
			"SelectDefault", "SelectRecv", "SelectSend", "SendDir", "Slice", "SliceOf", "String", "Struct",
			"StructOf", "Swapper", "TypeOf", "Uint", "Uint16", "Uint32", "Uint64", "Uint8", "Uintptr",
			"UnsafePointer", "ValueOf", "VisibleFields", "Zero", "ChanDir", "Kind", "MapIter", "Method",
			"SelectCase", "SelectDir", "SliceHeader", "StringHeader", "StructField", "StructTag", "Type",
			"Value", "ValueError",
		},
		refuse: map[string]string{"NewAt": whyMemory},
	},
}

// refusedMethods are method names refused on any value: an allowed type has a method that the
// package-level rules cannot see.
var refusedMethods = map[string]string{
	"Chdir": "(*os.File).Chdir changes the working directory of the whole process",
}

// refusedPackages explains why some standard packages are left out; a package in neither list
// above is refused with whyNotListed.
var refusedPackages = map[string]string{
	"os/exec":                         whySpawn,
	"os/signal":                       whySignals,
	"syscall":                         "it makes raw system calls: processes, signals, exit, memory",
	"unsafe":                          whyMemory,
	"plugin":                          "it loads native code into the process",
	"flag":                            whyExit + " (a flag set that fails to parse, or -help, exits)",
	"testing":                         whyExit + " (testing.Main, M.Run) and registers process-wide flags",
	"go/build":                        whySpawn + " (it runs the go command)",
	"go/importer":                     whySpawn + " (it runs the go command)",
	"runtime/trace":                   whyProfile,
	"expvar":                          "it publishes process-wide variables over HTTP",
	"crypto/tls":                      whyNetwork,
	"log/syslog":                      whyNetwork,
	"text/template":                   "templates call methods by name while they run, past the load-time check",
	"html/template":                   "templates call methods by name while they run, past the load-time check",
	"github.com/traefik/yaegi/stdlib": whyInterp,
}

// packagePolicy says whether a standard package may be imported, and why not.
func packagePolicy(pkg string) (allowed bool, why string) {
	if _, partial := partialPackages[pkg]; partial || allowedPackageSet[pkg] {
		return true, ""
	}
	if why, ok := refusedPackages[pkg]; ok {
		return false, why
	}
	if pkg == "net" || strings.HasPrefix(pkg, "net/") {
		return false, whyNetwork
	}
	return false, whyNotListed
}

var allowedPackageSet = func() map[string]bool {
	m := map[string]bool{}
	for _, p := range allowedPackages {
		m[p] = true
	}
	return m
}()

var partialAllowSet = func() map[string]map[string]bool {
	m := map[string]map[string]bool{}
	for pkg, p := range partialPackages {
		m[pkg] = map[string]bool{}
		for _, s := range p.allow {
			m[pkg][s] = true
		}
	}
	return m
}()

// symbolAllowed reports whether a symbol of a partly allowed package is on its list. The
// interpreter's wrapper types for interfaces ("_FileInfo") follow their interface.
func symbolAllowed(pkg, sym string) bool {
	set := partialAllowSet[pkg]
	return set[sym] || (strings.HasPrefix(sym, "_") && set[sym[1:]])
}

// restricted is the standard library interpreted code gets by default, built from the lists
// above (never from a deny-list): the allowed packages in full, the partly allowed ones symbol
// by symbol, and the interpreter's own interface mapping (".").
var restricted = func() interp.Exports {
	out := interp.Exports{}
	for k, syms := range stdlib.Symbols {
		pkg := pkgOf(k)
		switch {
		case k == ".":
			out[k] = syms
		case allowedPackageSet[pkg]:
			out[k] = syms
		case partialAllowSet[pkg] != nil:
			m := map[string]reflect.Value{}
			for s, v := range syms {
				if symbolAllowed(pkg, s) {
					m[s] = v
				}
			}
			out[k] = m
		}
	}
	return out
}()

const trustedHint = "only the trusted mode (the controller option AllowFullStdlib, hotcb train --allow-full-stdlib) allows it"

// stdPackageNames maps the import path of every standard package the interpreter knows to its
// package name ("math/rand/v2" -> "rand").
var stdPackageNames = func() map[string]string {
	m := map[string]string{}
	for k := range fullStdlib {
		if i := strings.LastIndex(k, "/"); i > 0 {
			m[k[:i]] = k[i+1:]
		}
	}
	return m
}()

// checkPolicy enforces the default standard library on a parsed file (parsed with object
// resolution, so that a local variable named like a package is not taken for it): imports
// outside the allow-list, restricted symbols of partly allowed packages (renamed imports
// included; dot imports of standard packages are refused), methods in refusedMethods, and
// writes to standard package variables (time.Local, os.Args: they are shared with the whole
// process). It returns the first offence in source order.
func checkPolicy(fset *token.FileSet, f *ast.File) error {
	local := map[string]string{} // name in the file -> import path, standard packages only
	for _, imp := range f.Imports {
		pkg, _ := strconv.Unquote(imp.Path.Value)
		name, std := stdPackageNames[pkg]
		_, refused := refusedPackages[pkg]
		if !std && !refused {
			continue // hotcb's packages, or unknown ones (refused by the caller)
		}
		if ok, why := packagePolicy(pkg); !ok {
			return fmt.Errorf("%s: import %q is not allowed in go_file callbacks: %s; %s", fset.Position(imp.Pos()), pkg, why, trustedHint)
		}
		if imp.Name != nil {
			switch imp.Name.Name {
			case "_":
				continue
			case ".":
				return fmt.Errorf("%s: dot import of %q is not allowed in go_file callbacks: import standard packages by name, so that the load-time check can see what the file uses; %s", fset.Position(imp.Pos()), pkg, trustedHint)
			}
			name = imp.Name.Name
		}
		local[name] = pkg
	}
	// pkgSel returns the import path and symbol when e is pkg.Symbol on a standard package.
	pkgSel := func(e ast.Expr) (string, string, bool) {
		s, ok := e.(*ast.SelectorExpr)
		if !ok {
			return "", "", false
		}
		id, ok := s.X.(*ast.Ident)
		if !ok || id.Obj != nil || local[id.Name] == "" {
			return "", "", false
		}
		return local[id.Name], s.Sel.Name, true
	}
	// written returns the package variable an assignment to e writes into (through fields,
	// indexes and dereferences), if any.
	written := func(e ast.Expr) (ast.Expr, string, string, bool) {
		for {
			if pkg, sym, ok := pkgSel(e); ok {
				return e, pkg, sym, true
			}
			switch x := e.(type) {
			case *ast.ParenExpr:
				e = x.X
			case *ast.SelectorExpr:
				e = x.X
			case *ast.IndexExpr:
				e = x.X
			case *ast.IndexListExpr:
				e = x.X
			case *ast.StarExpr:
				e = x.X
			default:
				return nil, "", "", false
			}
		}
	}
	var bad error
	fail := func(n ast.Node, format string, args ...any) {
		if bad == nil {
			bad = fmt.Errorf("%s: %s", fset.Position(n.Pos()), fmt.Sprintf(format, args...))
		}
	}
	refuseWrite := func(e ast.Expr, verb string) {
		if at, pkg, sym, ok := written(e); ok {
			fail(at, "%s %s.%s is not allowed in go_file callbacks: package variables of the standard library are shared with the whole process; %s",
				verb, stdPackageNames[pkg], sym, trustedHint)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if bad != nil {
			return false
		}
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if pkg, sym, ok := pkgSel(n); ok {
				if _, partial := partialPackages[pkg]; partial && !symbolAllowed(pkg, sym) {
					why := partialPackages[pkg].refuse[sym]
					if why == "" {
						why = whyNotListed + " for package " + pkg
					}
					fail(n, "%s.%s is not allowed in go_file callbacks: %s; %s", stdPackageNames[pkg], sym, why, trustedHint)
				}
			} else if why, ok := refusedMethods[n.Sel.Name]; ok {
				fail(n.Sel, "the method %s is not allowed in go_file callbacks: %s; %s", n.Sel.Name, why, trustedHint)
			}
		case *ast.AssignStmt:
			if n.Tok != token.DEFINE {
				for _, l := range n.Lhs {
					refuseWrite(l, "assigning to")
				}
			}
		case *ast.RangeStmt:
			if n.Tok == token.ASSIGN {
				refuseWrite(n.Key, "assigning to")
				if n.Value != nil {
					refuseWrite(n.Value, "assigning to")
				}
			}
		case *ast.IncDecStmt:
			refuseWrite(n.X, "changing")
		case *ast.UnaryExpr:
			if n.Op == token.AND {
				refuseWrite(n.X, "taking the address of")
			}
		}
		return bad == nil
	})
	return bad
}
