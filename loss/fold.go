package loss

import "strings"

// Applied is a set_params that was applied: its params and the step it was applied at.
type Applied struct {
	Params map[string]any
	Step   int64
}

// Fold turns applied set_params, in the order they were applied, into the params of one
// set_params that, applied to a Loss declared as before, leaves it in the state they left it in
// (nil when they change nothing): for a restart, which cannot replay the history at its steps.
// Every weight set is given as NAME_w, every toggle in "terms", every ramp in "ramps" — with its
// from_step made explicit, the step its op was applied at when it had none — or "none" for a
// ramp removed. A ramp whose end defaulted to the term's weight gets the same end again: a
// weight set after the ramp removed it, and one set before it is in the folded params too.
func Fold(history []Applied) map[string]any {
	weights, terms, ramps := map[string]any{}, map[string]any{}, map[string]any{}
	for _, a := range history {
		w, t, r := map[string]any{}, map[string]any{}, map[string]any{}
		put := func(key, name string, v any) {
			switch {
			case strings.HasPrefix(key, "terms."):
				t[name] = v
			case strings.HasPrefix(key, "ramps."):
				r[name] = v
			default:
				w[name] = v
			}
		}
		for _, k := range sortedKeys(a.Params) {
			v := a.Params[k]
			switch {
			case k == "terms" || k == "ramps":
				m, _ := object(v)
				for name, x := range m {
					put(k+".", name, x)
				}
			case strings.HasPrefix(k, "terms.") || strings.HasPrefix(k, "ramps."):
				put(k, k[len("terms."):], v)
			default:
				put(k, strings.TrimSuffix(k, "_w"), v)
			}
		}
		for name, v := range w { // SetParams: weights, then toggles, then ramps
			weights[name] = v
			if _, again := r[name]; !again {
				delete(ramps, name)
			}
		}
		for name, v := range t {
			terms[name] = v
		}
		for name, v := range r {
			spec, err := rampOf("", v)
			switch {
			case err != nil:
				ramps[name] = v // as it was applied
			case spec == nil:
				ramps[name] = "none"
			default:
				m, _ := object(v)
				obj := make(map[string]any, len(m)+1)
				for k, x := range m {
					obj[k] = x
				}
				if spec.FromStep == nil {
					obj["from_step"] = a.Step
				}
				ramps[name] = obj
			}
		}
	}
	out := map[string]any{}
	for name, v := range weights {
		out[name+"_w"] = v
	}
	if len(terms) > 0 {
		out["terms"] = terms
	}
	if len(ramps) > 0 {
		out["ramps"] = ramps
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
