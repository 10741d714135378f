package gofile_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/torchenv"
)

// What the default standard library of go_file callbacks lets through. Each hostile file below
// could crash the process, start a process, signal or exit it, or change process-wide state; it
// is refused when loaded, at the offending line, and loads in the trusted mode (FullStdlib).
// Nothing hostile is ever run: the dangerous code sits in a function nobody calls.

// hostile is a complete callback whose never-called function danger holds body.
func hostile(imports, body string) string {
	return `package h

import (
` + imports + `
	"github.com/hotcb/hotcb/torchenv"
)

type H struct{}

func (h *H) ID() string                                   { return "h" }
func (h *H) Handle(event string, env *torchenv.Env) error { return nil }
func (h *H) SetParams(p map[string]any) error             { return nil }

// danger is never called.
func danger() {
` + body + `
}
`
}

// lineOf returns the 1-based line of the first occurrence of needle in src.
func lineOf(src, needle string) int {
	i := strings.Index(src, needle)
	if i < 0 {
		panic("no " + needle)
	}
	return strings.Count(src[:i], "\n") + 1
}

func TestHostileStdlibUseRefused(t *testing.T) {
	cases := []struct {
		name, imports, body string
		at                  string // where the error points (the first line holding it)
		want                string
	}{
		// the escapes of the issue
		{"set_max_stack", `	"runtime/debug"`, `	debug.SetMaxStack(1 << 10)`, "debug.SetMaxStack",
			"debug.SetMaxStack is not allowed in go_file callbacks: it changes a process-wide runtime setting or limit"},
		{"signal_self", `	"os"`, "	p, _ := os.FindProcess(os.Getpid())\n	p.Signal(os.Interrupt)", "os.FindProcess",
			"os.FindProcess is not allowed in go_file callbacks: it returns a handle that can signal or kill any process, this one included"},
		{"start_process", `	"os"`, `	os.StartProcess("/bin/true", nil, &os.ProcAttr{})`, "os.StartProcess",
			"os.StartProcess is not allowed in go_file callbacks: it can start processes"},
		{"signal_ignore", "	\"os\"\n	\"os/signal\"", `	signal.Ignore(os.Interrupt)`, `"os/signal"`,
			`import "os/signal" is not allowed in go_file callbacks: it can send signals or change how the process handles them (Ctrl-C included)`},
		// and more
		{"exit", `	"os"`, `	os.Exit(3)`, "os.Exit", "os.Exit is not allowed in go_file callbacks: it can exit the process"},
		{"log_fatal", `	"log"`, `	log.Fatal("bye")`, "log.Fatal", "log.Fatal is not allowed in go_file callbacks: it can exit the process"},
		{"log_default", `	"log"`, `	log.Default().Fatalf("bye")`, "log.Default", "log.Default is not allowed in go_file callbacks: it returns a *log.Logger, whose Fatal methods exit the process"},
		{"slog_log_logger", `	"log/slog"`, `	slog.NewLogLogger(nil, 0).Fatal("bye")`, "slog.NewLogLogger", "slog.NewLogLogger is not allowed in go_file callbacks: it returns a *log.Logger"},
		{"goexit", `	"runtime"`, `	runtime.Goexit()`, "runtime.Goexit", "runtime.Goexit is not allowed in go_file callbacks: it ends the calling goroutine, which is the training loop's"},
		{"signal_notify", "	\"os\"\n	\"os/signal\"", "	c := make(chan os.Signal, 1)\n	signal.Notify(c, os.Interrupt)", `"os/signal"`,
			`import "os/signal" is not allowed in go_file callbacks`},
		{"gomaxprocs", `	"runtime"`, `	runtime.GOMAXPROCS(1)`, "runtime.GOMAXPROCS", "runtime.GOMAXPROCS is not allowed in go_file callbacks: it changes a process-wide runtime setting"},
		{"lock_thread", `	"runtime"`, `	runtime.LockOSThread()`, "runtime.LockOSThread", "runtime.LockOSThread is not allowed in go_file callbacks: it changes the OS-thread locking the bridge relies on"},
		{"set_gc_percent", `	"runtime/debug"`, `	debug.SetGCPercent(-1)`, "debug.SetGCPercent", "debug.SetGCPercent is not allowed"},
		{"set_finalizer", `	"runtime"`, `	runtime.SetFinalizer(new(int), nil)`, "runtime.SetFinalizer", "runtime.SetFinalizer is not allowed in go_file callbacks: it changes how objects are freed"},
		{"chdir", `	"os"`, `	os.Chdir("/")`, "os.Chdir", "os.Chdir is not allowed in go_file callbacks: it changes the working directory of the whole process"},
		{"file_chdir", `	"os"`, "	f, _ := os.Open(\"/\")\n	f.Chdir()", "Chdir()", "the method Chdir is not allowed in go_file callbacks: (*os.File).Chdir changes the working directory of the whole process"},
		{"setenv", `	"os"`, `	os.Setenv("PATH", "/evil")`, "os.Setenv", "os.Setenv is not allowed in go_file callbacks: the environment belongs to the whole process"},
		{"new_file", `	"os"`, `	os.NewFile(2, "stderr").Close()`, "os.NewFile", "os.NewFile is not allowed"},
		{"rand_seed", `	"math/rand"`, `	rand.Seed(1)`, "rand.Seed", "rand.Seed is not allowed in go_file callbacks: it reseeds the process-wide random source"},
		{"reflect_new_at", `	"reflect"`, `	x := 1
	_ = reflect.NewAt(reflect.TypeOf([8]int{}), reflect.ValueOf(&x).UnsafePointer())`, "reflect.NewAt", "reflect.NewAt is not allowed in go_file callbacks: it can reinterpret memory"},
		{"renamed_import", `	sys "os"`, `	sys.Exit(1)`, "sys.Exit", "os.Exit is not allowed in go_file callbacks: it can exit the process"},
		{"dot_import", `	. "os"`, `	Exit(1)`, `. "os"`, `dot import of "os" is not allowed in go_file callbacks`},
		{"assign_time_local", `	"time"`, `	time.Local = time.UTC`, "time.Local =", "assigning to time.Local is not allowed in go_file callbacks: package variables of the standard library are shared with the whole process"},
		{"address_of_var", `	"runtime"`, `	p := &runtime.MemProfileRate
	*p = 0`, "runtime.MemProfileRate", "taking the address of runtime.MemProfileRate is not allowed"},
		{"os_exec", `	"os/exec"`, `	exec.Command("true").Run()`, `"os/exec"`, `import "os/exec" is not allowed in go_file callbacks: it can start processes`},
		{"syscall", `	"syscall"`, `	syscall.Kill(syscall.Getpid(), syscall.SIGINT)`, `"syscall"`, `import "syscall" is not allowed`},
		{"net_http", `	"net/http"`, `	http.Get("http://example.com")`, `"net/http"`, `import "net/http" is not allowed in go_file callbacks: it can open network connections`},
		{"tls", `	"crypto/tls"`, `	tls.Dial("tcp", "example.com:443", nil)`, `"crypto/tls"`, `import "crypto/tls" is not allowed in go_file callbacks: it can open network connections`},
		{"flag", `	"flag"`, `	flag.Parse()`, `"flag"`, `import "flag" is not allowed in go_file callbacks: it can exit the process`},
		{"interp_tables", `	"github.com/traefik/yaegi/stdlib"`, `	_ = stdlib.Symbols["os/os"]["Exit"]`, `"github.com/traefik/yaegi/stdlib"`,
			`import "github.com/traefik/yaegi/stdlib" is not allowed in go_file callbacks: it exposes the interpreter's full symbol tables`},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := hostile(c.imports, c.body)
			p := write(t, dir, c.name+".go", src)
			_, err := load(gofile.NewLoader(gofile.Options{}), p, "H", "h", nil)
			require.Error(t, err)
			require.Contains(t, err.Error(), fmt.Sprintf("%s:%d:", p, lineOf(src, c.at)), "the error names file:line")
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), "trusted mode", "the error says what unlocks it")

			cb, err := load(gofile.NewLoader(gofile.Options{FullStdlib: true}), p, "H", "h", nil)
			require.NoError(t, err, "the trusted mode loads it")
			require.Equal(t, "h", cb.ID())
		})
	}
}

// TestAllowedStdlibStillWorks: an ordinary callback — file I/O with os, fmt, math, strings,
// time, sync, encoding/json, log, a runtime query, debug.Stack — loads and runs under the
// default, and a parameter named like a package (os) is not taken for the package.
func TestAllowedStdlibStillWorks(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "ok.go", `package ok

import (
	"encoding/json"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/hotcb/hotcb/torchenv"
)

type record struct {
	Step  int64   `+"`json:\"step\"`"+`
	Root  float64 `+"`json:\"root\"`"+`
	Label string  `+"`json:\"label\"`"+`
}

type Writer struct {
	Dir string
	mu  sync.Mutex `+"`hotcb:\"-\"`"+`
}

func (w *Writer) ID() string { return "writer" }

func (w *Writer) Handle(event string, env *torchenv.Env) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	start := time.Now()
	if err := os.MkdirAll(filepath.Join(w.Dir, "out"), 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(record{Step: env.Step, Root: math.Sqrt(float64(env.Step)), Label: strings.ToUpper(event)})
	if err != nil {
		return err
	}
	path := filepath.Join(w.Dir, "out", fmt.Sprintf("step%d.json", env.Step))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return err
	}
	back, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r record
	if err := json.Unmarshal(back, &r); err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	log.SetOutput(os.Stderr)
	if len(debug.Stack()) == 0 || runtime.NumGoroutine() < 1 || time.Since(start) < 0 {
		return fmt.Errorf("odd runtime")
	}
	env.Logf("wrote %s %.1f", r.Label, r.Root)
	return nil
}

func (w *Writer) SetParams(p map[string]any) error { return nil }

type fakeOS struct{ code int }

func (f *fakeOS) Exit(code int) { f.code = code }

// shadow's parameter os is not the package: its Exit is allowed.
func shadow(os *fakeOS) int { os.Exit(2); return os.code }
`)
	cb, err := load(gofile.NewLoader(gofile.Options{}), p, "Writer", "writer", map[string]any{"dir": dir})
	require.NoError(t, err)
	var lines []string
	env := &torchenv.Env{Step: 16, Loss: bridge.Scalar(1), Log: func(s string) { lines = append(lines, s) }}
	require.NoError(t, cb.Handle("train_step_end", env))
	require.Equal(t, []string{"wrote TRAIN_STEP_END 4.0"}, lines)
	b, err := os.ReadFile(filepath.Join(dir, "out", "step16.json"))
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(b, &got))
	require.Equal(t, map[string]any{"step": 16.0, "root": 4.0, "label": "TRAIN_STEP_END"}, got)
}
