package ops

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"

	"github.com/hotcb/hotcb/internal/pyjson"
)

// MarshalLine encodes an op as one commands line (without the newline) byte for byte as hotcb's
// Python CLI writes it (json.dumps with its default separators ", " and ": "): the fields in
// hotcb's order — module, op, id, target (kind, path, symbol), init, params, then enabled, mode
// and source_capture — params and init keys in ParamsOrder and InitOrder (the order they were
// typed; keys not listed follow, sorted), floats as Python writes them (2.0, 0.001, 1e-05).
func MarshalLine(o Op) ([]byte, error) {
	w := lineWriter{b: make([]byte, 0, 128)}
	w.b = append(w.b, '{')
	w.str("module", o.ModuleName())
	w.str("op", o.Op)
	if o.ID != "" {
		w.str("id", o.ID)
	}
	if t := o.Target; t != nil {
		w.strings("target", "kind", t.Kind, "path", t.Path, "symbol", t.Symbol)
	}
	if o.Init != nil {
		w.key("init")
		w.object(o.Init, o.InitOrder)
	}
	if o.Params != nil {
		w.key("params")
		w.object(o.Params, o.ParamsOrder)
	}
	if o.Enabled != nil {
		w.key("enabled")
		w.value(*o.Enabled)
	}
	if o.Mode != "" {
		w.str("mode", o.Mode)
	}
	if c := o.SourceCapture; c != nil {
		w.strings("source_capture", "sha256", c.SHA256, "captured_path", c.CapturedPath)
	}
	w.b = append(w.b, '}')
	return w.b, w.err
}

// lineWriter writes JSON as json.dumps does by default.
type lineWriter struct {
	b     []byte
	first bool // no ", " before the next key
	err   error
}

func (w *lineWriter) key(k string) {
	if len(w.b) > 1 && !w.first {
		w.b = append(w.b, ", "...)
	}
	w.first = false
	w.b = pyjson.AppendString(w.b, k)
	w.b = append(w.b, ": "...)
}

func (w *lineWriter) str(k, v string) {
	w.key(k)
	w.b = pyjson.AppendString(w.b, v)
}

// strings writes under k an object of string fields, kv holding key, value, key, value, ….
func (w *lineWriter) strings(k string, kv ...string) {
	w.key(k)
	w.b = append(w.b, '{')
	w.first = true
	for i := 0; i+1 < len(kv); i += 2 {
		w.str(kv[i], kv[i+1])
	}
	w.b = append(w.b, '}')
	w.first = false
}

// object writes m with the keys in order first (those m has), then the rest sorted.
func (w *lineWriter) object(m map[string]any, order []string) {
	keys := make([]string, 0, len(m))
	for _, k := range order {
		if _, ok := m[k]; ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	w.b = append(w.b, '{')
	w.first = true
	for _, k := range append(keys, rest...) {
		w.key(k)
		w.value(m[k])
	}
	w.b = append(w.b, '}')
	w.first = false
}

// value writes one params value in the one form of numbers (params.Normalize's types).
func (w *lineWriter) value(v any) {
	switch x := v.(type) {
	case nil:
		w.b = append(w.b, "null"...)
	case bool:
		w.b = strconv.AppendBool(w.b, x)
	case string:
		w.b = pyjson.AppendString(w.b, x)
	case int:
		w.b = strconv.AppendInt(w.b, int64(x), 10)
	case int64:
		w.b = strconv.AppendInt(w.b, x, 10)
	case uint64:
		w.b = strconv.AppendUint(w.b, x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			w.fail(fmt.Errorf("%v is not a number JSON can hold", x))
			return
		}
		w.b = pyjson.AppendFloat(w.b, x)
	case []any:
		w.b = append(w.b, '[')
		for i, e := range x {
			if i > 0 {
				w.b = append(w.b, ", "...)
			}
			w.value(e)
		}
		w.b = append(w.b, ']')
	case map[string]any:
		w.object(x, nil)
	default:
		w.fail(fmt.Errorf("a value of type %T", v))
	}
}

func (w *lineWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}
