package optim

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/hotcb/hotcb/params"
)

// AllGroups selects every parameter group in Set, SetParams and GetAll.
const AllGroups = -1

// hyper holds one group's hyper-parameters; which of them an optimizer reads is in its kind's
// key list.
type hyper struct {
	lr, momentum, dampening, weightDecay float64
	beta1, beta2, eps                    float64
	alpha, rho, lrDecay, initialAcc      float64
	momentumDecay                        float64
	toleranceGrad, toleranceChange       float64
	maxIter, maxEval, historySize        int
	lineSearch                           string // LBFGS's line_search_fn: "" (None) or "strong_wolfe"
	nesterov, maximize, amsgrad          bool
	centered                             bool
}

// HyperError reports a hyper-parameter that could not be set or read. The optimizer keeps the
// values it had.
type HyperError struct {
	Key    string // the name as given ("lr", "betas", …); several, comma-separated, when only together they fail
	Group  int    // the group index, or AllGroups
	Value  any    // the rejected value (nil when reading; the map of values when several keys)
	Reason string
}

func (e *HyperError) Error() string {
	where := ""
	if e.Group != AllGroups {
		where = fmt.Sprintf(" (group %d)", e.Group)
	}
	return fmt.Sprintf("optim: hyper-parameter %q%s: %s", e.Key, where, e.Reason)
}

// keysOf lists the hyper-parameters each kind of optimizer accepts, in the order Hyper and
// StateDict report them (torch.optim's, less the keys that only choose an implementation:
// foreach, capturable, differentiable, fused).
var keysOf = map[kind][]string{
	kindSGD:      {"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"},
	kindAdam:     {"lr", "betas", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"},
	kindAdamW:    {"lr", "betas", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize"},
	kindRMSprop:  {"lr", "momentum", "alpha", "eps", "centered", "weight_decay", "maximize"},
	kindAdagrad:  {"lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value", "maximize"},
	kindAdadelta: {"lr", "rho", "eps", "weight_decay", "maximize"},
	kindAdamax:   {"lr", "betas", "beta1", "beta2", "eps", "weight_decay", "maximize"},
	kindNAdam:    {"lr", "betas", "beta1", "beta2", "eps", "weight_decay", "momentum_decay"},
	kindRAdam:    {"lr", "betas", "beta1", "beta2", "eps", "weight_decay"},
	kindLBFGS:    {"lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size", "line_search_fn"},
}

// buildOnly are keys read only when the optimizer is built: SetParams refuses to change them
// (PyTorch would accept the value and ignore it).
var buildOnly = map[string]string{
	"initial_accumulator_value": "it fills Adagrad's sum of squared gradients when the optimizer is built; changing it later has no effect",
}

func (k kind) accepts(key string) bool {
	for _, n := range keysOf[k] {
		if n == key {
			return true
		}
	}
	return false
}

func (k kind) unknownKey(key string, group int, v any) *HyperError {
	return &HyperError{Key: key, Group: group, Value: v, Reason: fmt.Sprintf("%s has no such hyper-parameter (it has %s)",
		k, strings.Join(keysOf[k], ", "))}
}

// floatField, intField and boolField return the field that holds a key of their type, or nil.
// "betas" (beta1 and beta2 together) and "line_search_fn" (a string) have none.
func (h *hyper) floatField(key string) *float64 {
	switch key {
	case "lr":
		return &h.lr
	case "momentum":
		return &h.momentum
	case "dampening":
		return &h.dampening
	case "weight_decay":
		return &h.weightDecay
	case "beta1":
		return &h.beta1
	case "beta2":
		return &h.beta2
	case "eps":
		return &h.eps
	case "alpha":
		return &h.alpha
	case "rho":
		return &h.rho
	case "lr_decay":
		return &h.lrDecay
	case "initial_accumulator_value":
		return &h.initialAcc
	case "momentum_decay":
		return &h.momentumDecay
	case "tolerance_grad":
		return &h.toleranceGrad
	case "tolerance_change":
		return &h.toleranceChange
	}
	return nil
}

func (h *hyper) intField(key string) *int {
	switch key {
	case "max_iter":
		return &h.maxIter
	case "max_eval":
		return &h.maxEval
	case "history_size":
		return &h.historySize
	}
	return nil
}

func (h *hyper) boolField(key string) *bool {
	switch key {
	case "nesterov":
		return &h.nesterov
	case "maximize":
		return &h.maximize
	case "amsgrad":
		return &h.amsgrad
	case "centered":
		return &h.centered
	}
	return nil
}

// get returns the value of a key the kind accepts: float64, bool, int (LBFGS's max_iter,
// max_eval, history_size), string (line_search_fn, "" for None) or [2]float64 for "betas".
func (h *hyper) get(key string) any {
	switch key {
	case "betas":
		return [2]float64{h.beta1, h.beta2}
	case "line_search_fn":
		return h.lineSearch
	}
	if f := h.floatField(key); f != nil {
		return *f
	}
	if n := h.intField(key); n != nil {
		return *n
	}
	if b := h.boolField(key); b != nil {
		return *b
	}
	return nil
}

// set parses and range-checks v for key and stores it; on failure h is unchanged and the reason
// is returned. Values are read by package params, hotcb's one converter of loose values: a
// number of any Go type or its text ("1e-3", as hotcb's CLI writes lr=1e-3) for a number, an
// integral one for an integer, a bool, 0/1 or true/false/yes/no/on/off for a bool.
func (h *hyper) set(key string, v any) string {
	if field := h.boolField(key); field != nil {
		b, err := params.Bool(v)
		if err != nil {
			return err.Error()
		}
		*field = b
		return ""
	}
	if field := h.intField(key); field != nil {
		n, err := params.Int(v)
		if err != nil {
			return err.Error()
		}
		if n < 1 {
			return fmt.Sprintf("must be >= 1, got %d", n)
		}
		*field = n
		return ""
	}
	switch key {
	case "betas":
		pair, ok := toPair(v)
		if !ok {
			return fmt.Sprintf("want a pair of numbers, got %s", describe(v))
		}
		for i, b := range pair {
			if r := checkBeta(b); r != "" {
				return fmt.Sprintf("betas[%d] %s", i, r)
			}
		}
		h.beta1, h.beta2 = pair[0], pair[1]
		return ""
	case "line_search_fn":
		switch s, _ := v.(string); {
		case v == nil || s == "" || s == "none" || s == "None":
			h.lineSearch = ""
		case s == "strong_wolfe":
			h.lineSearch = s
		default:
			return fmt.Sprintf(`want "strong_wolfe" or none (nil, ""), got %s`, describe(v))
		}
		return ""
	}
	if x, ok := v.(float64); ok && math.IsNaN(x) {
		return "must be finite, got NaN" // params.Float would say it is not a number
	}
	f, err := params.Float(v)
	if err != nil {
		return err.Error()
	}
	if math.IsInf(f, 0) {
		return fmt.Sprintf("must be finite, got %v", f)
	}
	switch key {
	case "beta1", "beta2":
		if r := checkBeta(f); r != "" {
			return r
		}
	case "dampening", "rho":
		if f < 0 || f > 1 {
			return fmt.Sprintf("must be in [0, 1], got %v", f)
		}
	default:
		if f < 0 {
			return fmt.Sprintf("must be >= 0, got %v", f)
		}
	}
	field := h.floatField(key)
	if field == nil {
		return "unknown hyper-parameter"
	}
	*field = f
	return ""
}

// consistent checks rules that tie keys together, after key was set.
func (h *hyper) consistent(k kind) string {
	if k == kindSGD && h.nesterov && (h.momentum <= 0 || h.dampening != 0) {
		return fmt.Sprintf("nesterov momentum needs momentum > 0 and dampening 0 (momentum %v, dampening %v)",
			h.momentum, h.dampening)
	}
	return ""
}

func checkBeta(b float64) string {
	if math.IsNaN(b) || b < 0 || b >= 1 {
		return fmt.Sprintf("must be in [0, 1), got %v", b)
	}
	return ""
}

func describe(v any) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// toPair reads two numbers: a list of two (any slice or array, of numbers or their text) or
// their text, "0.9,0.999".
func toPair(v any) ([2]float64, bool) {
	fs, err := params.Floats(v)
	if err != nil || len(fs) != 2 {
		return [2]float64{}, false
	}
	return [2]float64{fs[0], fs[1]}, true
}

// Keys lists the hyper-parameter names this optimizer accepts.
func (o *Optimizer) Keys() []string { return append([]string(nil), keysOf[o.kind]...) }

// Get returns one group's value of key: a float64, a bool ("nesterov", "maximize", "amsgrad",
// "centered"), an int (LBFGS's "max_iter", "max_eval", "history_size"), a string (LBFGS's
// "line_search_fn": "strong_wolfe", or "" for none) or a [2]float64 for "betas".
func (o *Optimizer) Get(group int, key string) (any, error) {
	if group < 0 || group >= len(o.groups) {
		return nil, o.badGroup(group, key, nil)
	}
	if !o.kind.accepts(key) {
		return nil, o.kind.unknownKey(key, group, nil)
	}
	return o.groups[group].h.get(key), nil
}

// GetAll returns key's value in every group, in group order.
func (o *Optimizer) GetAll(key string) ([]any, error) {
	if !o.kind.accepts(key) {
		return nil, o.kind.unknownKey(key, AllGroups, nil)
	}
	out := make([]any, len(o.groups))
	for i, g := range o.groups {
		out[i] = g.h.get(key)
	}
	return out, nil
}

// Hyper returns a snapshot of one group's hyper-parameters by name.
func (o *Optimizer) Hyper(group int) map[string]any {
	if group < 0 || group >= len(o.groups) {
		return nil
	}
	m := map[string]any{}
	for _, k := range keysOf[o.kind] {
		m[k] = o.groups[group].h.get(k)
	}
	return m
}

// Set changes one hyper-parameter in one group, or in every group with AllGroups. The next Step
// uses the new value. A bad name, type or value is a *HyperError naming the key, and nothing
// changes.
func (o *Optimizer) Set(group int, key string, value any) error {
	return o.SetParams(group, map[string]any{key: value})
}

// SetParams changes several hyper-parameters at once (what `opt set_params lr=3e-4 eps=1e-6`
// asks for), in one group or in every group with AllGroups. It is all or nothing: if any key or
// value is bad, no group changes and the error names the first bad key (keys are applied in
// sorted order, so "betas" wins over "beta1"/"beta2" given together).
//
// Besides each value's own range, a number must fit in the dtype of every parameter of the group
// (lr=1e308 overflows float32), and the update with the new values must run on scratch tensors
// like the group's parameters (see "Changes that fail" in trial.go); the first Step afterwards
// rolls the change back if libtorch still raises (see Rollback).
func (o *Optimizer) SetParams(group int, params map[string]any) error {
	if group != AllGroups && (group < 0 || group >= len(o.groups)) {
		return o.badGroup(group, firstKey(params), nil)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	targets := []int{group}
	if group == AllGroups {
		targets = make([]int, len(o.groups))
		for i := range targets {
			targets[i] = i
		}
	}
	for _, k := range keys {
		if why, ok := buildOnly[k]; ok && o.kind.accepts(k) {
			return &HyperError{Key: k, Group: group, Value: params[k], Reason: "cannot be changed: " + why}
		}
	}
	next := make([]hyper, len(targets))
	for ti, g := range targets {
		h := o.groups[g].h
		for _, k := range keys {
			if err := applyKey(o.kind, &h, k, params[k], group); err != nil {
				return err
			}
		}
		next[ti] = h
	}
	for ti, g := range targets {
		if err := o.checkFits(g, &next[ti], keys, group); err != nil {
			return err
		}
	}
	probed := make([]map[probeKey]bool, len(targets))
	for ti, g := range targets {
		if next[ti] == o.groups[g].h {
			continue // nothing changes: nothing to try
		}
		probed[ti] = map[probeKey]bool{}
		if perr := o.probe(o.groups[g].params, &next[ti], probed[ti]); perr != nil {
			reason := perr.reason(o.kind)
			if len(o.groups) > 1 {
				reason += fmt.Sprintf(" (group %d)", g)
			}
			var v any = params
			if len(keys) == 1 {
				v = params[keys[0]]
			}
			return &HyperError{Key: strings.Join(keys, ","), Group: group, Value: v, Reason: reason}
		}
	}
	changed := false
	for ti, g := range targets {
		changed = changed || next[ti] != o.groups[g].h
	}
	if !changed {
		return nil
	}
	o.rev++
	for ti, g := range targets {
		gr := o.groups[g]
		if next[ti] == gr.h {
			continue
		}
		gr.note(gr.h, next[ti], keys, o.rev, probed[ti])
		gr.h = next[ti]
	}
	return nil
}

// applyKey sets one key in h and checks the group's rules; errors carry errGroup.
func applyKey(k kind, h *hyper, key string, v any, errGroup int) *HyperError {
	if !k.accepts(key) {
		return k.unknownKey(key, errGroup, v)
	}
	if r := h.set(key, v); r != "" {
		return &HyperError{Key: key, Group: errGroup, Value: v, Reason: r}
	}
	if r := h.consistent(k); r != "" {
		return &HyperError{Key: key, Group: errGroup, Value: v, Reason: r}
	}
	return nil
}

func (o *Optimizer) badGroup(group int, key string, v any) *HyperError {
	return &HyperError{Key: key, Group: AllGroups, Value: v,
		Reason: fmt.Sprintf("no parameter group %d (the optimizer has %d)", group, len(o.groups))}
}

func firstKey(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// LR returns one group's learning rate.
func (o *Optimizer) LR(group int) float64 { return o.groups[group].h.lr }

// SetLR sets one group's learning rate (AllGroups: every group); it is Set(group, "lr", lr).
func (o *Optimizer) SetLR(group int, lr float64) error { return o.Set(group, "lr", lr) }
