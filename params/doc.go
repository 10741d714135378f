// Package params decodes the parameter maps a callback receives — the `init` values of a load
// op and the params of `set_params` — into a typed Go struct, whether the map came from JSON
// (float64 or json.Number), YAML (int, float64) or the CLI's k=v parsing (strings like "10",
// "0.5", "true", "a,b,c"):
//
//	type timingParams struct {
//		Every    int           `hotcb:"every,min=1"`
//		Sync     bool          // key "sync"
//		Interval time.Duration // "250ms", or a number of seconds
//		Mode     string        `hotcb:"mode,oneof=host|cuda"`
//	}
//
//	func (c *Timing) SetParams(p map[string]any) error {
//		return params.Decode(p, &c.params) // all or nothing: on error c.params is unchanged
//	}
//
// Keys match a field's tag, else its name in any case with or without underscores ("EveryN"
// answers to "every_n" and "everyn"). Only the keys present change (a partial update); an
// unknown key is an error listing the valid ones, so `set_params evry=10` is caught. Every
// problem is reported, each as an *Error naming its key ("layers.2", "thresholds.loss"), and
// the destination is left unchanged when there is any. Encode turns a struct back into a map with
// the same keys; Keys lists them for help texts. Decode's comment has the conversion rules.
//
// params is also hotcb's one converter of loose values outside a struct: Normalize puts a value
// in the form every source delivers to callbacks (integers int64, other numbers float64, never a
// json.Number; see its comment), Equal compares two values by value (50 == 50.0), and Float, Int,
// Bool and Floats read one value by hand with Decode's rules ("1e-3" is 0.001 for a float).
package params
