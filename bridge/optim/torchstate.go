package optim

import (
	"fmt"
	"math"

	"github.com/hotcb/hotcb/bridge"
)

// The state dict as torch.optim holds it
//
// StateDict flattens the state dict into named tensors, as bridge.SaveNamed writes them: Python
// reads such a file as nested dicts of tensors — param_groups a dict of dicts of 0-d tensors,
// betas a dict, params a dict — and torch.optim.Optimizer.load_state_dict cannot take it. TorchStateDict returns the state dict
// with Python's own types instead:
//
//	{"state": {0: {"step": tensor(3.), "exp_avg": tensor([…]), …}, 1: {…}},    int keys
//	 "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-08,      a list of dicts
//	                   "weight_decay": 0.0, "amsgrad": False, "maximize": False,
//	                   "foreach": None, "capturable": False, "differentiable": False,
//	                   "fused": False, "initial_lr": 0.001, "params": [0, 1]}]}
//
// — floats, bools, ints, None, strings, tuples and lists where PyTorch 1.13 has them, including
// the keys that only choose PyTorch's implementation (foreach, capturable, …) at their
// defaults: what torch.optim's load_state_dict takes (and what torch.save(opt.state_dict())
// writes).
//
// bridge.SaveValue writes it: `bridge.SaveValue("opt.pt", opt.TorchStateDict())`, and Python's
// `opt.load_state_dict(torch.load("opt.pt"))` takes it.

// putNum writes a number of LBFGS's state: a 0-d tensor of dt, an int, or a float.
func putNum(v *bridge.Value, n num, dt bridge.DType) {
	switch {
	case n.ten:
		v.Tensor(bridge.Scalar(n.v, dt))
	case n.v == math.Trunc(n.v) && math.Abs(n.v) < 1<<53:
		v.Int(int64(n.v))
	default:
		v.Float(n.v)
	}
}

// implKeys are the keys of PyTorch 1.13's param groups that only choose an implementation, at
// their defaults (nil is None), and where they go among the keys this package has: after key.
var implKeys = map[kind][]struct {
	after, key string
	v          any
}{
	kindSGD:      {{"maximize", "foreach", nil}, {"foreach", "differentiable", false}},
	kindAdam:     {{"maximize", "foreach", nil}, {"foreach", "capturable", false}, {"capturable", "differentiable", false}, {"differentiable", "fused", false}},
	kindAdamW:    {{"amsgrad", "foreach", nil}, {"maximize", "capturable", false}},
	kindRMSprop:  {{"weight_decay", "foreach", nil}, {"maximize", "differentiable", false}},
	kindAdagrad:  {{"initial_accumulator_value", "foreach", nil}},
	kindAdadelta: {{"maximize", "foreach", nil}},
	kindAdamax:   {{"weight_decay", "foreach", nil}},
	kindNAdam:    {{"momentum_decay", "foreach", nil}},
	kindRAdam:    {{"weight_decay", "foreach", nil}},
}

// torchGroupKeys lists a kind's param-group keys in PyTorch's order, with the implementation
// keys among them.
func torchGroupKeys(k kind) []string {
	var out []string
	var add func(key string)
	add = func(key string) {
		out = append(out, key)
		for _, ik := range implKeys[k] {
			if ik.after == key {
				add(ik.key)
			}
		}
	}
	for _, key := range keysOf[k] {
		if key == "beta1" || key == "beta2" {
			continue
		}
		add(key)
	}
	return out
}

func implValue(k kind, key string) (any, bool) {
	for _, ik := range implKeys[k] {
		if ik.key == key {
			return ik.v, true
		}
	}
	return nil, false
}

// TorchStateDict returns the state dict as torch.optim's state_dict() returns it, as a
// bridge.Value for bridge.SaveValue: {"state": {<param index>: {…}}, "param_groups": [{…, "params": […]}]}.
// As with StateDict, the state tensors are the optimizer's own; the 0-d tensors made for steps
// and scalars are new.
func (o *Optimizer) TorchStateDict() *bridge.Value {
	v := &bridge.Value{}
	v.Dict(2)
	v.Str("state")
	if o.kind == kindLBFGS {
		o.lbfgs.torchState(v)
	} else {
		n := 0
		for i := range o.state {
			if !o.state[i].empty() {
				n++
			}
		}
		v.Dict(n)
		for i := range o.state {
			st := &o.state[i]
			if st.empty() {
				continue
			}
			v.Int(int64(i))
			fields := 0
			for _, f := range stateFields[o.kind] {
				if f == "step" || f == "mu_product" || *st.field(f) != nil {
					fields++
				}
			}
			v.Dict(fields)
			for _, f := range stateFields[o.kind] {
				switch f {
				case "step":
					v.Str(f)
					if o.kind.intStep() {
						v.Int(st.step)
					} else {
						v.Tensor(bridge.Scalar(float64(st.step), bridge.Float32))
					}
				case "mu_product":
					v.Str(f)
					v.Tensor(bridge.Scalar(st.muProduct, bridge.Float32))
				default:
					if t := *st.field(f); t != nil {
						v.Str(f)
						v.Tensor(t)
					}
				}
			}
		}
	}
	v.Str("param_groups")
	v.List(len(o.groups))
	keys := torchGroupKeys(o.kind)
	for _, g := range o.groups {
		n := len(keys) + len(g.extra) + 1
		if g.hasInitial {
			n++
		}
		v.Dict(n)
		for _, key := range keys {
			v.Str(key)
			if iv, ok := implValue(o.kind, key); ok {
				if iv == nil {
					v.None()
				} else {
					v.Bool(iv.(bool))
				}
				continue
			}
			switch x := g.h.get(key).(type) {
			case float64:
				v.Float(x)
			case bool:
				v.Bool(x)
			case int:
				v.Int(int64(x))
			case string:
				if x == "" {
					v.None()
				} else {
					v.Str(x)
				}
			case [2]float64:
				v.Tuple(2)
				v.Float(x[0])
				v.Float(x[1])
			default:
				panic(fmt.Sprintf("optim: TorchStateDict: %s has a %T", key, x))
			}
		}
		if g.hasInitial {
			v.Str("initial_lr")
			v.Float(g.initialLR)
		}
		for _, e := range g.extra {
			v.Str(e.key)
			v.Float(e.v)
		}
		v.Str("params")
		v.List(len(g.params))
		for _, pi := range g.params {
			v.Int(int64(pi))
		}
	}
	return v
}

// torchState writes LBFGS's state: {0: {"func_evals": …, …}}, or {} before the first step.
func (s *lbfgsState) torchState(v *bridge.Value) {
	if s.funcEvals == 0 && s.nIter == 0 && s.d == nil {
		v.Dict(0)
		return
	}
	v.Dict(1)
	v.Int(0)
	n := 2
	if s.hasAl {
		n++
	}
	if s.d != nil {
		n += 8
	}
	v.Dict(n)
	v.Str("func_evals")
	v.Int(int64(s.funcEvals))
	v.Str("n_iter")
	v.Int(int64(s.nIter))
	dt := s.dtype()
	if s.hasAl {
		v.Str("al")
		v.List(len(s.al))
		for i, a := range s.al {
			if s.alSet[i] {
				putNum(v, a, dt)
			} else {
				v.None()
			}
		}
	}
	if s.d == nil {
		return
	}
	v.Str("d")
	v.Tensor(s.d)
	v.Str("t")
	putNum(v, s.t, dt)
	for _, l := range []struct {
		name string
		ts   []*bridge.Tensor
	}{{"old_dirs", s.oldDirs}, {"old_stps", s.oldStps}} {
		v.Str(l.name)
		v.List(len(l.ts))
		for _, t := range l.ts {
			v.Tensor(t)
		}
	}
	v.Str("ro")
	v.List(len(s.ro))
	for _, r := range s.ro {
		putNum(v, r, dt)
	}
	v.Str("H_diag")
	putNum(v, s.hDiag, dt)
	v.Str("prev_flat_grad")
	v.Tensor(s.prevFlatGrad)
	v.Str("prev_loss")
	v.Float(s.prevLoss)
}
