// Package callback is the contract between hotcb and a callback — HotCallback with its optional
// OnAttach and Close — and the module registry through which compiled callbacks are found by
// (path, symbol), the way database/sql finds drivers: a callback package registers a factory in
// its init, and a load op naming that path and symbol builds an instance.
//
// # Parameter values
//
// A load's init (given to the Factory or go_file constructor) and the params of SetParams are a
// map[string]any whose values have the same Go types whatever their source — a line of
// hotcb.commands.jsonl (hotcb-go's CLI or hotcb's Python CLI), hotcb.yaml, a recipe replay, the
// ledger at a restart, or Go values given to Submit (ops.Normalize puts them in this form):
//
//   - an integer is an int64 (a uint64 only above math.MaxInt64);
//   - any other number is a float64 (JSON's 2.0 and YAML's 2.0 too; 2 is an int64);
//   - text is a string, also when it spells a number: hotcb's Python CLI writes lr=1e-3 as
//     "1e-3", so a callback that wants a number should read it with params.Float (or params.Int,
//     params.Bool), or decode the map with params.Decode, which accept numbers of either type and
//     their text;
//   - true/false are bools, null is nil, a list is []any and an object map[string]any, their
//     elements following the same rules; a time.Duration given to Submit arrives as its text.
//
// A value is never a json.Number, an int, a float32 or another Go number type. A callback whose
// SetParams switches on types handles int64, float64, string, bool, []any and map[string]any.
// Where a float is wanted, accept int64 too (`lr=1` is an integer), or use params.Float.
package callback

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

// HotCallback is what the controller dispatches events to.
type HotCallback interface {
	// ID is the stable identifier used by commands and logs.
	ID() string
	// Handle runs at a safe point for each event while the callback is enabled. An error, or a
	// panic, is isolated by the controller.
	Handle(event string, env *torchenv.Env) error
	// SetParams applies new parameter values; applying the same values twice changes nothing.
	// On error the callback must keep its previous values. The values are int64, float64,
	// string, bool, nil, []any or map[string]any (see the package doc).
	SetParams(params map[string]any) error
}

// Attacher is implemented by callbacks that set up once loaded (open files, register hooks).
type Attacher interface {
	OnAttach(env *torchenv.Env) error
}

// Closer is implemented by callbacks that release resources when unloaded or replaced.
type Closer interface {
	Close() error
}

// Pauser is implemented by callbacks that must know when they are turned off and on: one that
// acts outside Handle (a forward hook, say) stops while off, and an instrument that measures the
// time between events does not count the time it was off. OnPause runs when the callback is
// disabled (by an op, the YAML, an error, its call budget or the watchdog) or loaded disabled;
// OnResume when it is enabled again, before its next Handle. Both run on the training goroutine.
type Pauser interface {
	OnPause()
	OnResume()
}

// Abandoner is implemented by callbacks whose calls the controller's watchdog can see and, when
// one does not return, abandon: go_file callbacks, whose interpreter can be stopped.
type Abandoner interface {
	// Running describes the call in progress ("Handle(train_step_end)"), the step it was made
	// at and when it started; ok is false between calls. Safe from any goroutine.
	Running() (call string, step int64, since time.Time, ok bool)
	// Abandon stops the callback for good: the running call returns at its next statement and
	// every later call returns at once without running. It reports whether this call stopped it
	// (false if it was stopped already). Safe from any goroutine.
	Abandon() bool
	// Abandoned says whether Abandon was called.
	Abandoned() bool
}

// Target says where a callback comes from (defined in package ops).
type Target = ops.CallbackTarget

// Factory builds a callback with its id and the load op's init values (in the form the package
// doc describes).
type Factory func(id string, init map[string]any) (HotCallback, error)

// Registry maps (path, symbol) to factories. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]Factory
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{m: map[string]Factory{}} }

// Default is the registry Register adds to and controllers use unless told otherwise.
var Default = NewRegistry()

func key(path, symbol string) string { return path + "#" + symbol }

// Register adds a factory under (path, symbol) to r; registering the same pair twice panics, as
// it is a programming error.
func (r *Registry) Register(path, symbol string, f Factory) {
	if path == "" || symbol == "" || f == nil {
		panic("callback: Register needs a path, a symbol and a factory")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := key(path, symbol)
	if _, dup := r.m[k]; dup {
		panic("callback: " + k + " registered twice")
	}
	r.m[k] = f
}

// Register adds a factory to the Default registry.
func Register(path, symbol string, f Factory) { Default.Register(path, symbol, f) }

// Lookup finds the factory for (path, symbol); the error lists what is registered under the
// path (or in all) to help with typos.
func (r *Registry) Lookup(path, symbol string) (Factory, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if f, ok := r.m[key(path, symbol)]; ok {
		return f, nil
	}
	var same, all []string
	for k := range r.m {
		all = append(all, k)
		if strings.HasPrefix(k, path+"#") {
			same = append(same, strings.TrimPrefix(k, path+"#"))
		}
	}
	sort.Strings(same)
	sort.Strings(all)
	if len(same) > 0 {
		return nil, fmt.Errorf("no symbol %q registered under %q (it has: %s)", symbol, path, strings.Join(same, ", "))
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no callback registered as %s#%s (the registry is empty: import the package that registers it)", path, symbol)
	}
	return nil, fmt.Errorf("no callback registered as %s#%s (registered: %s)", path, symbol, strings.Join(all, ", "))
}

// Names lists the registered (path#symbol) keys, sorted.
func (r *Registry) Names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.m))
	for k := range r.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Loader builds a callback from a target of one kind.
type Loader interface {
	Load(target Target, id string, init map[string]any) (HotCallback, error)
}

// LoaderFunc adapts a function to Loader.
type LoaderFunc func(target Target, id string, init map[string]any) (HotCallback, error)

// Load calls f.
func (f LoaderFunc) Load(t Target, id string, init map[string]any) (HotCallback, error) {
	return f(t, id, init)
}

// ModuleLoader loads KindModule targets from a registry.
func ModuleLoader(r *Registry) Loader {
	return LoaderFunc(func(t Target, id string, init map[string]any) (HotCallback, error) {
		f, err := r.Lookup(t.Path, t.Symbol)
		if err != nil {
			return nil, err
		}
		cb, err := f(id, init)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key(t.Path, t.Symbol), err)
		}
		if cb == nil {
			return nil, fmt.Errorf("%s: factory returned no callback", key(t.Path, t.Symbol))
		}
		return cb, nil
	})
}
