// Package spec describes hotcb-go's built-in callbacks, one value each (All): their Go and hotcb
// names, what `hotcb init` writes for them, what they do, and their parameters — the params
// structs themselves live here (params.go), so that keys, rules, defaults and the fields' doc
// comments are read from one place. It is pure Go: the hotcb command (which does not link
// libtorch) reads it for its template, its name checks and its listing; the callback packages
// (which do) register and decode from it (callbacks.Provide, callbacks.Base); the README's
// table of built-ins is generated from it (go generate ./callbacks/spec).
package spec

//go:generate go test -run TestREADMETable . -args -update

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/params"
)

// GoPackage is the import path under which the built-ins' packages live.
const GoPackage = "github.com/hotcb/hotcb/callbacks"

// PythonPackage is the Python hotcb package that exports every built-in callback.
const PythonPackage = "hotcb.modules.cb.callbacks"

// Builtin describes one built-in callback. Spec[P] adds its typed parameters.
type Builtin struct {
	// Name is the callback's Go type, and the symbol it is registered under with GoPath.
	Name string
	// Package is the directory of its Go package under GoPackage ("timing").
	Package string
	// Hotcb is its hotcb module under PythonPackage ("timing"), and the id `hotcb init` gives it.
	Hotcb string
	// HotcbSymbol is its hotcb class ("TimingCallback").
	HotcbSymbol string
	// Init is the init `hotcb init` writes for it, a YAML flow mapping.
	Init string
	// About is one line on what it does (`hotcb init`'s comment, `hotcb builtins`).
	About string
	// Doc says what it does at more length (the README's table; Markdown).
	Doc string
	// Example leaves it commented out in `hotcb init`'s template: it needs something only the
	// user knows (feat_viz: which layers).
	Example bool
	// Options are how its SetParams decodes values (params.Decode).
	Options []params.Option

	defaults func() any // a new P with the default values
}

// Spec is a Builtin whose parameters are a P, a struct that package params decodes.
type Spec[P any] struct {
	Builtin
	defaults func() P
}

// define pairs b with its parameters' defaults.
func define[P any](b Builtin, defaults func() P) *Spec[P] {
	s := &Spec[P]{Builtin: b, defaults: defaults}
	s.Builtin.defaults = func() any { return defaults() }
	return s
}

// Defaults returns the parameters of a new callback, before its init is applied (a new value
// each time: its lists are its own).
func (s *Spec[P]) Defaults() P { return s.defaults() }

// Describe returns the untyped description.
func (s *Spec[P]) Describe() *Builtin { return &s.Builtin }

// GoPath is the import path of the built-in's package.
func (b *Builtin) GoPath() string { return GoPackage + "/" + b.Package }

// HotcbPath is the built-in's hotcb module path.
func (b *Builtin) HotcbPath() string { return PythonPackage + "." + b.Hotcb }

// Target is a (path, symbol) pair that a module target names.
type Target struct{ Path, Symbol string }

// String is "path#symbol", the registry's name for it.
func (t Target) String() string { return t.Path + "#" + t.Symbol }

// Targets are the names the built-in is registered under, each loading the same callback: its
// Go path and type, its hotcb module and class, and hotcb's package (which exports every class).
func (b *Builtin) Targets() []Target {
	return []Target{{b.GoPath(), b.Name}, {b.HotcbPath(), b.HotcbSymbol}, {PythonPackage, b.HotcbSymbol}}
}

// Param describes one parameter: a field of the params struct.
type Param struct {
	Key     string // what init and set_params call it
	Field   string // the Go field
	Type    string // the Go type ("int", "[]string")
	Rules   string // the tag's rules as written ("min=1", "oneof=log|disable|stop"); "" for none
	Default any    // the default value, as params.Encode gives it (a nil list as an empty one)
	Doc     string // the field's doc comment, on one line
}

// Params lists the built-in's parameters in field order.
func (b *Builtin) Params() []Param {
	def := b.defaults()
	enc := params.Encode(def)
	t := reflect.TypeOf(def)
	var out []Param
	for i := range t.NumField() {
		f := t.Field(i)
		tag, ok := f.Tag.Lookup("hotcb")
		if !f.IsExported() || tag == "-" {
			continue
		}
		if !ok || f.Anonymous {
			// All is checked by the tests: only a programming error gets here.
			panic(fmt.Sprintf("spec: %s.%s: a built-in's param needs a hotcb tag and no embedding", t.Name(), f.Name))
		}
		key, rules, _ := strings.Cut(tag, ",")
		d := enc[key]
		if d == nil && f.Type.Kind() == reflect.Slice {
			d = []any{}
		}
		out = append(out, Param{Key: key, Field: f.Name, Type: f.Type.String(), Rules: rules, Default: d,
			Doc: fieldDoc(t.Name(), f.Name)})
	}
	return out
}

// Lookup finds a built-in by its hotcb name, Go type name or Go package directory, in any case
// ("timing", "Timing", "feat_viz", "featviz" when only one built-in lives there).
func Lookup(name string) (*Builtin, bool) {
	var byPkg []*Builtin
	for _, b := range All {
		if strings.EqualFold(name, b.Hotcb) || strings.EqualFold(name, b.Name) {
			return b, true
		}
		if strings.EqualFold(name, b.Package) {
			byPkg = append(byPkg, b)
		}
	}
	if len(byPkg) == 1 {
		return byPkg[0], true
	}
	return nil, false
}

// Flow writes v — a value as params.Encode returns it — as YAML flow text, as hotcb.yaml and
// `hotcb cb set_params` take it: 50, true, timing/timing.jsonl, [loss, outputs], "" (strings
// that would read as something else are quoted).
func Flow(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return flowString(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = Flow(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = flowString(k) + ": " + Flow(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func flowString(s string) string {
	if s == "" || s != strings.TrimSpace(s) || strings.ContainsAny(s, ":,[]{}#&*!|>'\"%@`\\\n") ||
		strings.ContainsAny(s[:1], "-?") || looksScalar(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

// looksScalar says whether YAML would read s as something other than a string.
func looksScalar(s string) bool {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~", ".inf", "-.inf", ".nan":
		return true
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
