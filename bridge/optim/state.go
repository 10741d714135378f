package optim

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/bridge"
)

// State dicts use the layout of PyTorch's Optimizer.state_dict(), flattened with dots the way
// bridge.Decode flattens a torch.save'd dict:
//
//	state.<i>.momentum_buffer                      SGD with momentum, RMSprop with momentum
//	state.<i>.step, .exp_avg, .exp_avg_sq          Adam, AdamW (step: 0-d float32)
//	state.<i>.max_exp_avg_sq                       with amsgrad
//	state.<i>.step, .square_avg, .grad_avg         RMSprop (step: 0-d int64; grad_avg when centered)
//	state.<i>.step, .sum                           Adagrad (step: 0-d float32; every parameter)
//	state.<i>.step, .square_avg, .acc_delta        Adadelta (step: 0-d int64)
//	state.<i>.step, .exp_avg, .exp_inf             Adamax
//	state.<i>.step, .mu_product, .exp_avg, …       NAdam (mu_product: 0-d float32)
//	state.<i>.step, .exp_avg, .exp_avg_sq          RAdam
//	state.0.func_evals, .n_iter, .d, .t, …         LBFGS (see lbfgs.go)
//	param_groups.<g>.lr, .momentum, .betas.0, …    0-d float64 (bools: 0-d bool; LBFGS's counts: 0-d int64)
//	param_groups.<g>.initial_lr                    once a scheduler has been attached
//	param_groups.<g>.max_lr, .min_lr, …            the keys OneCycleLR adds
//	param_groups.<g>.params.<k>                    0-d int64: the index i of the group's k-th param
//
// <i> counts parameters across groups, in order. So the file bridge.SaveNamed writes from
// StateDict is what LoadStateDict reads, and LoadStateDict also reads what Python's
// torch.save(optimizer.state_dict()) wrote (through bridge.LoadNamed). Strings have no place in
// this layout: LBFGS's line_search_fn is not written, and a loaded state dict leaves it as it is
// (bridge.Decode skips strings too). TorchStateDict is the state dict as Python holds it, for
// Python's torch.optim to load.

// stateFields lists each kind's per-parameter state, in PyTorch's order: "step", NAdam's
// "mu_product", and tensors.
var stateFields = map[kind][]string{
	kindSGD:      {"momentum_buffer"},
	kindAdam:     {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
	kindAdamW:    {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
	kindRMSprop:  {"step", "square_avg", "momentum_buffer", "grad_avg"},
	kindAdagrad:  {"step", "sum"},
	kindAdadelta: {"step", "square_avg", "acc_delta"},
	kindAdamax:   {"step", "exp_avg", "exp_inf"},
	kindNAdam:    {"step", "mu_product", "exp_avg", "exp_avg_sq"},
	kindRAdam:    {"step", "exp_avg", "exp_avg_sq"},
}

// requiredState lists the state a parameter that has any must have.
var requiredState = map[kind][]string{
	kindAdam:     {"step", "exp_avg", "exp_avg_sq"},
	kindAdamW:    {"step", "exp_avg", "exp_avg_sq"},
	kindRMSprop:  {"step", "square_avg"},
	kindAdagrad:  {"step", "sum"},
	kindAdadelta: {"step", "square_avg", "acc_delta"},
	kindAdamax:   {"step", "exp_avg", "exp_inf"},
	kindNAdam:    {"step", "mu_product", "exp_avg", "exp_avg_sq"},
	kindRAdam:    {"step", "exp_avg", "exp_avg_sq"},
}

// intStep reports whether torch.optim keeps the kind's step as a Python int (RMSprop, Adadelta)
// rather than a 0-d float32 tensor.
func (k kind) intStep() bool { return k == kindRMSprop || k == kindAdadelta }

// StateDict returns the optimizer's state and hyper-parameters in PyTorch's layout (see above).
// As in PyTorch, the state tensors are the optimizer's own, not copies: save them (or Clone
// them) before the next Step if a snapshot is wanted. Parameters that have never been updated
// have no entries (but Adagrad's, which have state from the start).
func (o *Optimizer) StateDict() []bridge.Named {
	var out []bridge.Named
	if o.kind == kindLBFGS {
		out = o.lbfgs.stateDict()
	}
	for i := range o.state {
		st := &o.state[i]
		if st.empty() {
			continue
		}
		pre := "state." + strconv.Itoa(i) + "."
		for _, f := range stateFields[o.kind] {
			switch f {
			case "step":
				if o.kind.intStep() {
					out = append(out, bridge.Named{Name: pre + f, Tensor: bridge.FromSlice([]int64{st.step}).Reshape()})
				} else {
					out = append(out, bridge.Named{Name: pre + f, Tensor: bridge.Scalar(float64(st.step), bridge.Float32)})
				}
			case "mu_product":
				out = append(out, bridge.Named{Name: pre + f, Tensor: bridge.Scalar(st.muProduct, bridge.Float32)})
			default:
				if t := *st.field(f); t != nil {
					out = append(out, bridge.Named{Name: pre + f, Tensor: t})
				}
			}
		}
	}
	for gi, g := range o.groups {
		pre := "param_groups." + strconv.Itoa(gi) + "."
		for _, key := range keysOf[o.kind] {
			switch v := g.h.get(key).(type) {
			case float64:
				if key == "beta1" || key == "beta2" {
					continue // saved as betas
				}
				out = append(out, bridge.Named{Name: pre + key, Tensor: bridge.Scalar(v, bridge.Float64)})
			case int:
				out = append(out, bridge.Named{Name: pre + key, Tensor: bridge.FromSlice([]int64{int64(v)}).Reshape()})
			case bool:
				out = append(out, bridge.Named{Name: pre + key, Tensor: bridge.FromSlice([]bool{v}).Reshape()})
			case [2]float64:
				for k, b := range v {
					out = append(out, bridge.Named{Name: pre + key + "." + strconv.Itoa(k), Tensor: bridge.Scalar(b, bridge.Float64)})
				}
			}
		}
		if g.hasInitial {
			out = append(out, bridge.Named{Name: pre + "initial_lr", Tensor: bridge.Scalar(g.initialLR, bridge.Float64)})
		}
		for _, e := range g.extra {
			out = append(out, bridge.Named{Name: pre + e.key, Tensor: bridge.Scalar(e.v, bridge.Float64)})
		}
		for k, pi := range g.params {
			out = append(out, bridge.Named{Name: pre + "params." + strconv.Itoa(k), Tensor: bridge.FromSlice([]int64{int64(pi)}).Reshape()})
		}
	}
	return out
}

// LoadStateDict replaces the optimizer's state and hyper-parameters with those in items (from
// StateDict, bridge.LoadNamed, or Python's optimizer.state_dict() saved with torch.save). The
// groups must match this optimizer's: same number, same number of parameters in each; state
// tensors must have their parameter's shape, and are copied, converted to its dtype and device.
// Keys PyTorch writes that this package does not use (foreach, capturable, …) are ignored. On
// error nothing changes.
func (o *Optimizer) LoadStateDict(items []bridge.Named) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("optim: load %s state dict: %w", o.kind, err)
		}
	}()
	byName := make(map[string]*bridge.Tensor, len(items))
	nGroups := 0
	for _, it := range items {
		if it.Tensor == nil {
			return fmt.Errorf("%s: nil tensor", it.Name)
		}
		byName[it.Name] = it.Tensor
		switch {
		case strings.HasPrefix(it.Name, "state."):
		case strings.HasPrefix(it.Name, "param_groups."):
			gs, _, _ := strings.Cut(strings.TrimPrefix(it.Name, "param_groups."), ".")
			g, perr := strconv.Atoi(gs)
			if perr != nil || g < 0 {
				return fmt.Errorf("%s: bad group index %q", it.Name, gs)
			}
			nGroups = max(nGroups, g+1)
		default:
			return fmt.Errorf("unexpected key %q (want state.* and param_groups.*)", it.Name)
		}
	}
	if nGroups != len(o.groups) {
		return fmt.Errorf("state dict has %d parameter groups, the optimizer has %d", nGroups, len(o.groups))
	}

	var lerr error
	if terr := bridge.Try(func() { lerr = o.loadChecked(items, byName) }); terr != nil {
		return terr
	}
	return lerr
}

func (o *Optimizer) loadChecked(items []bridge.Named, byName map[string]*bridge.Tensor) error {
	// Groups: parameter ids and hyper-parameters.
	idToParam := map[int64]int{}
	hypers := make([]hyper, len(o.groups))
	initial := make([]float64, len(o.groups))
	hasInitial := make([]bool, len(o.groups))
	extras := make([][]extraKey, len(o.groups))
	for gi, g := range o.groups {
		pre := "param_groups." + strconv.Itoa(gi) + "."
		n := 0
		for ; ; n++ {
			t, ok := byName[pre+"params."+strconv.Itoa(n)]
			if !ok {
				break
			}
			if n < len(g.params) {
				id := t.ItemInt()
				if _, dup := idToParam[id]; dup {
					return fmt.Errorf("%sparams.%d: parameter id %d appears twice", pre, n, id)
				}
				idToParam[id] = g.params[n]
			}
		}
		if n != len(g.params) {
			return fmt.Errorf("%sparams: the state dict has %d parameters in group %d, the optimizer has %d",
				pre, n, gi, len(g.params))
		}
		h := g.h
		for _, key := range keysOf[o.kind] {
			if key == "beta1" || key == "beta2" {
				continue
			}
			var v any
			switch key {
			case "betas":
				b0, ok0 := byName[pre+"betas.0"]
				b1, ok1 := byName[pre+"betas.1"]
				if !ok0 || !ok1 {
					return fmt.Errorf("missing key %sbetas.0 / %sbetas.1", pre, pre)
				}
				v = [2]float64{b0.Item(), b1.Item()}
			default:
				t, ok := byName[pre+key]
				if !ok {
					if key == "maximize" || key == "line_search_fn" {
						// Older PyTorch versions do not save maximize; None and strings are not
						// in the flat layout.
						continue
					}
					return fmt.Errorf("missing key %s%s", pre, key)
				}
				if t.Numel() != 1 {
					return fmt.Errorf("%s%s: want a single value, got shape %v", pre, key, t.Shape())
				}
				if _, isBool := h.get(key).(bool); isBool {
					if t.DType() != bridge.Bool {
						return fmt.Errorf("%s%s: want a bool, got %v", pre, key, t.DType())
					}
					v = t.Item() != 0
				} else {
					v = t.Item()
				}
			}
			if herr := applyKey(o.kind, &h, key, v, gi); herr != nil {
				return fmt.Errorf("%s%s: %w", pre, key, herr)
			}
		}
		hypers[gi] = h
		if t, ok := byName[pre+"initial_lr"]; ok {
			initial[gi], hasInitial[gi] = t.Item(), true
		}
		for _, key := range extraKeys {
			if t, ok := byName[pre+key]; ok {
				extras[gi] = append(extras[gi], extraKey{key, t.Item()})
			}
		}
	}

	// Per-parameter state, copied onto each parameter's dtype and device.
	state := make([]paramState, len(o.params))
	var lb *lbfgsState
	if o.kind == kindLBFGS {
		var err error
		if lb, err = o.loadLBFGS(items, idToParam); err != nil {
			return err
		}
	}
	has := make([]map[string]bool, len(o.params))
	for _, it := range items {
		name, t := it.Name, it.Tensor
		rest, ok := strings.CutPrefix(name, "state.")
		if !ok || o.kind == kindLBFGS {
			continue
		}
		ids, field, ok := strings.Cut(rest, ".")
		id, perr := strconv.ParseInt(ids, 10, 64)
		if !ok || perr != nil {
			return fmt.Errorf("%s: want state.<param id>.<name>", name)
		}
		pi, known := idToParam[id]
		if !known {
			return fmt.Errorf("%s: no parameter with id %d in param_groups", name, id)
		}
		st := &state[pi]
		if has[pi] == nil {
			has[pi] = map[string]bool{}
		}
		has[pi][field] = true
		if field == "step" && o.kind != kindSGD {
			if t.Numel() != 1 {
				return fmt.Errorf("%s: want a single value, got shape %v", name, t.Shape())
			}
			st.step = int64(t.Item())
			continue
		}
		if field == "mu_product" && o.kind == kindNAdam {
			if t.Numel() != 1 {
				return fmt.Errorf("%s: want a single value, got shape %v", name, t.Shape())
			}
			st.muProduct = f32(t.Item())
			continue
		}
		dst := st.field(field)
		if dst == nil || !o.kind.hasState(field) {
			return fmt.Errorf("%s: %s keeps no state %q", name, o.kind, field)
		}
		p := o.params[pi]
		if ps, ts := p.Shape(), t.Shape(); !ps.Equal(ts) {
			return fmt.Errorf("%s: shape %v does not match parameter %d's shape %v", name, ts, pi, ps)
		}
		dt, dev := p.DType(), p.Device()
		if t.DType() == dt && t.Device() == dev {
			*dst = bridge.Keep(t.Clone())
		} else {
			*dst = t.To(dt, dev)
		}
	}
	for pi, h := range has {
		if h == nil {
			continue
		}
		for _, f := range requiredState[o.kind] {
			if !h[f] {
				return fmt.Errorf("state.%d.%s is missing (the parameter has other state)", o.paramID(pi, idToParam), f)
			}
		}
	}

	for gi, g := range o.groups {
		g.h, g.initialLR, g.hasInitial = hypers[gi], initial[gi], hasInitial[gi]
		for _, e := range extras[gi] {
			g.setExtra(e.key, e.v)
		}
		g.trial = nil // the loaded values are the group's own, not a change to try
	}
	o.state = state
	if lb != nil {
		o.lbfgs = lb
	}
	return nil
}

func (k kind) hasState(field string) bool {
	for _, f := range stateFields[k] {
		if f == field {
			return true
		}
	}
	return false
}

// paramID finds the id the state dict used for parameter pi (for error messages).
func (o *Optimizer) paramID(pi int, idToParam map[int64]int) int64 {
	for id, p := range idToParam {
		if p == pi {
			return id
		}
	}
	return int64(pi)
}
