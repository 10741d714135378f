// Package ops defines the control-plane operation record — the JSON lines of
// hotcb.commands.jsonl, in the same format as the Python hotcb — and CallbackTarget, the
// description of where a callback comes from. Parse validates a line and says exactly what is
// wrong with a bad one.
package ops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hotcb/hotcb/params"
)

// Target kinds.
const (
	KindModule     = "module"      // a compiled callback registered under (path, symbol)
	KindGoFile     = "go_file"     // Go source interpreted at run time
	KindPythonFile = "python_file" // hotcb's name for file loads; a .go path means KindGoFile
)

// CallbackTarget says where a callback comes from.
type CallbackTarget struct {
	Kind   string `json:"kind" yaml:"kind"`
	Path   string `json:"path" yaml:"path"`
	Symbol string `json:"symbol" yaml:"symbol"`
}

func (t CallbackTarget) String() string { return t.Kind + ":" + t.Path + "#" + t.Symbol }

// Normalized maps hotcb's python_file label on a .go path to go_file.
func (t CallbackTarget) Normalized() CallbackTarget {
	if t.Kind == KindPythonFile && strings.HasSuffix(t.Path, ".go") {
		t.Kind = KindGoFile
	}
	return t
}

// SourceCapture identifies the exact source a go_file load used: its SHA-256 and the copy kept
// in the run directory (hotcb.sources/<sha256>.go), so a replay loads the same code.
type SourceCapture struct {
	SHA256       string `json:"sha256" yaml:"sha256"`
	CapturedPath string `json:"captured_path" yaml:"captured_path"`
}

// Op is one control-plane operation.
type Op struct {
	Module  string          `json:"module,omitempty"` // "cb" when empty
	Op      string          `json:"op"`
	ID      string          `json:"id,omitempty"`
	Params  map[string]any  `json:"params,omitempty"`
	Target  *CallbackTarget `json:"target,omitempty"`
	Init    map[string]any  `json:"init,omitempty"`
	Enabled *bool           `json:"enabled,omitempty"`
	Mode    string          `json:"mode,omitempty"`
	// SourceCapture, on a go_file load, makes the loader use the captured copy of the source.
	SourceCapture *SourceCapture `json:"source_capture,omitempty"`
}

// Callback-module operations.
const (
	OpLoad      = "load"
	OpEnable    = "enable"
	OpDisable   = "disable"
	OpSetParams = "set_params"
	OpUnload    = "unload"
	OpFreeze    = "freeze"
)

// ModuleName is the op's module with the default applied.
func (o Op) ModuleName() string {
	if o.Module == "" {
		return "cb"
	}
	return o.Module
}

// IsEnabled is the load op's enabled flag (true when absent).
func (o Op) IsEnabled() bool { return o.Enabled == nil || *o.Enabled }

func (o Op) String() string {
	s := o.ModuleName() + "." + o.Op
	if o.ID != "" {
		s += "(" + o.ID + ")"
	}
	return s
}

// Validate checks the fields an op needs. Only the cb module's ops are checked in detail;
// other modules (opt, loss, core, user modules) check their own.
func (o Op) Validate() error {
	if o.Op == "" {
		return errors.New(`missing "op"`)
	}
	if o.ModuleName() != "cb" {
		return nil
	}
	switch o.Op {
	case OpLoad, OpEnable, OpDisable, OpSetParams, OpUnload:
	default:
		return fmt.Errorf("unknown cb op %q (want load, enable, disable, set_params or unload)", o.Op)
	}
	if o.ID == "" {
		return fmt.Errorf(`%s: missing "id"`, o.Op)
	}
	switch o.Op {
	case OpLoad:
		if o.Target == nil {
			return fmt.Errorf(`load %s: missing "target" {kind, path, symbol}`, o.ID)
		}
		t := o.Target
		switch t.Kind {
		case KindModule, KindGoFile, KindPythonFile:
		case "":
			return fmt.Errorf("load %s: target has no kind (want module, go_file or python_file)", o.ID)
		default:
			return fmt.Errorf("load %s: unknown target kind %q (want module, go_file or python_file)", o.ID, t.Kind)
		}
		if t.Path == "" {
			return fmt.Errorf("load %s: target has no path", o.ID)
		}
		if t.Symbol == "" {
			return fmt.Errorf("load %s: target has no symbol", o.ID)
		}
	case OpSetParams:
		if o.Params == nil {
			return fmt.Errorf(`set_params %s: missing "params"`, o.ID)
		}
		if len(o.Params) == 0 {
			return fmt.Errorf("set_params %s: no params given", o.ID)
		}
	}
	return nil
}

var (
	errEmpty     = errors.New("empty line")
	errNotObject = errors.New("not a JSON object")
)

// Parse decodes and validates one command line. Its params and init come out normalized (see
// Normalize): integers int64, other numbers float64, as from every other source. Unknown fields
// are ignored so that newer writers stay readable.
func Parse(line []byte) (Op, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return Op{}, errEmpty
	}
	if line[0] != '{' {
		return Op{}, errNotObject
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // exact: 50 stays an integer, 1e999 is caught instead of failing the decode
	var op Op
	if err := dec.Decode(&op); err != nil {
		return Op{}, describe(err)
	}
	if dec.More() {
		return Op{}, errors.New("trailing data after the JSON object")
	}
	if err := op.Validate(); err != nil {
		return Op{}, err
	}
	return Normalize(op)
}

// Normalize returns o with its params and init in the one form callbacks receive from every
// source (params.Normalize): integers int64 (uint64 only above math.MaxInt64), other numbers
// float64, strings, bools and nil as they are, nested maps map[string]any and lists []any; never
// a json.Number. Every entry point applies it: Parse, the YAML, recipes, the ledger at a restart,
// and Submit for Go values (int32, float32, uint, time.Duration, …). A number JSON cannot carry
// (1e999, NaN, an infinity) is an error naming the key, as an op holding one would make a ledger
// line that one reader or another cannot parse. o's maps are not modified.
func Normalize(o Op) (Op, error) {
	var err error
	if o.Params, err = params.NormalizeMap(o.Params); err != nil {
		return Op{}, fmt.Errorf("params %w", err)
	}
	if o.Init, err = params.NormalizeMap(o.Init); err != nil {
		return Op{}, fmt.Errorf("init %w", err)
	}
	return o, nil
}

// CheckNumbers refuses what Normalize refuses: numbers that JSON readers cannot take back (a
// literal out of float64's range such as 1e999, which Python reads as inf and Go refuses; NaN and
// the infinities) and values JSON cannot hold at all.
func CheckNumbers(o Op) error {
	_, err := Normalize(o)
	return err
}

func describe(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %v", se.Offset, se)
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// Marshal encodes an op as one line (without the newline).
func Marshal(o Op) ([]byte, error) { return json.Marshal(o) }

// MarshalJSON writes the op with floats that have no fraction as 2.0 rather than 2
// (params.ForJSON), so that a float read back is a float64 again, not an int64.
func (o Op) MarshalJSON() ([]byte, error) {
	type plain Op // without the method
	p := plain(o)
	p.Params, p.Init = params.ForJSONMap(o.Params), params.ForJSONMap(o.Init)
	return json.Marshal(p)
}
