package loss

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/hotcb/hotcb/params"
)

// SetParams applies the params of a set_params op of hotcb's loss module, at step. Keys route by
// their shape, as in hotcb:
//
//   - NAME_w=0.2 sets the weight of term NAME (the _w is stripped; a term whose own name ends in
//     _w is found whole when the stripped name is not a term);
//   - terms.NAME=false turns term NAME off (true: on); terms={"a":false,"b":true} sets several;
//   - ramps.NAME={...} gives term NAME a ramp (see Ramp), and "none" (or null, or type "none")
//     removes it; ramps={"a":{...}} sets several;
//   - any other KEY sets the weight of term KEY.
//
// Weights are numbers or their text ("0.5"), finite and >= 0; toggles are true/false (or their
// text, "on"/"off", 1/0). The op's weights apply first, then its toggles, then its ramps. The
// latest op wins for a term's weight: setting the weight of a term removes the ramp it had
// (unless the same op gives it a new one, whose end then defaults to that weight).
//
// It is all or nothing: any problem — an undeclared term (the error names it and the declared
// ones), a bad value, a term set twice in the op, a bad ramp — leaves the configuration as it was
// and is returned, every problem named by its key. On success it returns a note of the effects a
// reader of the ledger might not expect (a ramp removed or set, a weight given to a term that is
// off), "" when there are none.
func (l *Loss) SetParams(p map[string]any, step int64) (string, error) {
	if len(p) == 0 {
		return "", errors.New("no params given")
	}
	c := change{l: l, weights: map[string]float64{}, terms: map[string]bool{}, ramps: map[string]*rampSpec{},
		by: map[string]string{}}
	for _, k := range sortedKeys(p) {
		v := p[k]
		switch {
		case k == "terms" || k == "ramps":
			m, ok := object(v)
			if !ok {
				c.fail(fmt.Errorf("%s: want an object of term names, got %s", k, show(v)))
				continue
			}
			for _, name := range sortedKeys(m) {
				c.add(k+"."+name, name, m[name])
			}
		case strings.HasPrefix(k, "terms.") || strings.HasPrefix(k, "ramps."):
			c.add(k, k[len("terms."):], v)
		default:
			name := k
			if strings.HasSuffix(k, "_w") && len(k) > 2 {
				name = strings.TrimSuffix(k, "_w")
				if !l.known[name] && l.known[k] {
					name = k
				}
			}
			c.add(k, name, v)
		}
	}
	if len(c.errs) > 0 {
		return "", c.err()
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st.clone()
	var notes []string
	for _, name := range sortedKeys(c.weights) {
		st.Weights[name] = c.weights[name]
		if _, had := st.Ramps[name]; had {
			if _, again := c.ramps[name]; !again {
				delete(st.Ramps, name)
				notes = append(notes, fmt.Sprintf("ramp of %s removed: its weight was set", name))
			}
		}
	}
	for name, on := range c.terms {
		st.Terms[name] = on
	}
	for _, name := range sortedKeys(c.weights) {
		if !st.Terms[name] {
			notes = append(notes, fmt.Sprintf("%s is off: its weight counts once terms.%s=true", name, name))
		}
	}
	for _, name := range sortedKeys(c.ramps) {
		spec := c.ramps[name]
		if spec == nil {
			if _, had := st.Ramps[name]; had {
				delete(st.Ramps, name)
				notes = append(notes, fmt.Sprintf("ramp of %s removed", name))
			}
			continue
		}
		r, err := spec.resolve(st.Weights[name], step, l.total)
		if err != nil {
			c.fail(fmt.Errorf("%s: %v", c.by["ramps."+name], err))
			continue
		}
		st.Ramps[name] = r
		notes = append(notes, fmt.Sprintf("ramp of %s: %s", name, r.describe(l.total)))
	}
	if len(c.errs) > 0 {
		return "", c.err()
	}
	l.st = st
	return strings.Join(notes, "; "), nil
}

// change collects what one SetParams asks for, and its problems.
type change struct {
	l       *Loss
	weights map[string]float64
	terms   map[string]bool
	ramps   map[string]*rampSpec // nil: remove
	by      map[string]string    // "weights.NAME", "terms.NAME", "ramps.NAME" → the key that set it
	errs    []error
}

func (c *change) fail(err error) { c.errs = append(c.errs, err) }

func (c *change) err() error {
	msgs := make([]string, len(c.errs))
	for i, e := range c.errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// add takes one key: a weight ("ce", "ce_w"), a toggle ("terms.ce") or a ramp ("ramps.ce").
func (c *change) add(key, name string, v any) {
	kind := "weights"
	switch {
	case strings.HasPrefix(key, "terms."):
		kind = "terms"
	case strings.HasPrefix(key, "ramps."):
		kind = "ramps"
	}
	if !c.l.known[name] {
		c.fail(fmt.Errorf("%s: %v", key, c.l.unknown(name)))
		return
	}
	slot := kind + "." + name
	if prev, dup := c.by[slot]; dup {
		c.fail(fmt.Errorf("%s: the %s of %s is given twice (%s and %s)", key, strings.TrimSuffix(kind, "s"), name, prev, key))
		return
	}
	c.by[slot] = key
	switch kind {
	case "weights":
		w, err := decodeAs[float64](key, v)
		if err == nil {
			if err = checkWeight(w); err != nil {
				err = fmt.Errorf("%s: weight %v", key, err)
			}
		}
		if err != nil {
			c.fail(err)
			return
		}
		c.weights[name] = w
	case "terms":
		on, err := decodeAs[bool](key, v)
		if err != nil {
			c.fail(err)
			return
		}
		c.terms[name] = on
	case "ramps":
		spec, err := rampOf(key, v)
		if err != nil {
			c.fail(err)
			return
		}
		c.ramps[name] = spec
	}
}

// rampSpec is a ramp as set_params gives it; absent fields get their defaults in resolve.
type rampSpec struct {
	Type        string   `hotcb:"type"`
	Start       *float64 `hotcb:"start"`
	End         *float64 `hotcb:"end"`
	WarmupSteps *int64   `hotcb:"warmup_steps"`
	WarmupFrac  *float64 `hotcb:"warmup_frac"`
	FromStep    *int64   `hotcb:"from_step"`
}

// rampExample is shown when a ramp is not an object.
const rampExample = `an object such as {"type":"linear","warmup_frac":0.2,"end":2.0}, or "none" to remove the ramp`

// rampOf reads the value of a ramps.NAME key: nil for a removal.
func rampOf(key string, v any) (*rampSpec, error) {
	if v == nil {
		return nil, nil
	}
	if s, ok := v.(string); ok && (strings.EqualFold(s, "none") || strings.EqualFold(s, "off")) {
		return nil, nil
	}
	m, ok := object(v)
	if !ok {
		return nil, fmt.Errorf("%s: want %s, got %s", key, rampExample, show(v))
	}
	var spec rampSpec
	if err := params.Decode(m, &spec); err != nil {
		return nil, fmt.Errorf("%s: %v", key, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if strings.EqualFold(spec.Type, "none") {
		return nil, nil
	}
	return &spec, nil
}

// resolve fills in the defaults: type linear, start 0, end the term's weight, from_step the step
// of the op.
func (s rampSpec) resolve(weight float64, step, total int64) (Ramp, error) {
	r := Ramp{Type: s.Type, End: weight, FromStep: step}
	if r.Type == "" {
		r.Type = RampLinear
	}
	if s.Start != nil {
		r.Start = *s.Start
	}
	if s.End != nil {
		r.End = *s.End
	}
	if s.FromStep != nil {
		r.FromStep = *s.FromStep
	}
	if s.WarmupSteps != nil {
		r.WarmupSteps = *s.WarmupSteps
	}
	if s.WarmupFrac != nil {
		r.WarmupFrac = *s.WarmupFrac
	}
	if err := r.check(); err != nil {
		return r, err
	}
	if r.WarmupFrac > 0 && total <= 0 {
		return r, errors.New("warmup_frac needs the run's length, which the training loop has not given (Loss.SetTotalSteps): give warmup_steps instead")
	}
	return r, nil
}

// decodeAs converts one value the way params.Decode converts a field of type T (numbers from
// text, "on"/"off" for a bool, ...), with an error naming key.
func decodeAs[T any](key string, v any) (T, error) {
	var d struct {
		V T `hotcb:"v"`
	}
	if err := params.Decode(map[string]any{"v": v}, &d); err != nil {
		if es := params.Errors(err); len(es) == 1 && es[0].Want != "" {
			return d.V, fmt.Errorf("%s: want %s, got %s", key, es[0].Want, show(v))
		}
		return d.V, fmt.Errorf("%s: %v", key, err)
	}
	return d.V, nil
}

// object returns v as a map with string keys (from JSON, or any Go map keyed by strings).
func object(v any) (map[string]any, bool) {
	if m, ok := v.(map[string]any); ok {
		return m, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	m := make(map[string]any, rv.Len())
	for it := rv.MapRange(); it.Next(); {
		m[it.Key().String()] = it.Value().Interface()
	}
	return m, true
}

func show(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v", v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
