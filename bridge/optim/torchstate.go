package optim

import (
	"fmt"
	"math"
	"strings"

	"github.com/hotcb/hotcb/bridge"
)

// The state dict as torch.optim holds it
//
// StateDict flattens the state dict into named tensors, which is all bridge.SaveNamed (and the
// shim's hc_save behind it) can write: Python reads such a file as nested dicts of tensors —
// param_groups a dict of dicts of 0-d tensors, betas a dict, params a dict — and
// torch.optim.Optimizer.load_state_dict cannot take it. TorchStateDict returns the state dict
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
// defaults. Written by a torch.save writer that can express these values, it is what
// torch.optim's load_state_dict takes (and what torch.save(opt.state_dict()) writes).
//
// The value comes in prefix form (TorchValue), the shape a C writer takes them in: that writer
// is not in the shim yet (see TorchValue).

// Tags of TorchValue.Codes.
const (
	TagNone   = iota // None
	TagBool          // a bool: the next code is 0 or 1
	TagInt           // an int: the next code is its value
	TagFloat         // a float: the next of Floats
	TagStr           // a str: the next of Strings
	TagTensor        // a tensor: the next of Tensors
	TagList          // a list: the next code is its length n, then n values
	TagTuple         // a tuple: the next code is its length n, then n values
	TagDict          // a dict: the next code is its length n, then n pairs of key (TagInt or TagStr) and value
)

// TorchValue is a Python value in prefix form: Codes holds the tags of the values in depth-first
// order, each followed by its own ints (a bool, an int, a length); the floats, strings and
// tensors follow in Floats, Strings and Tensors, in the order their tags appear. A writer walks
// Codes once, building dicts, lists and tuples as it goes; for torch.save's format, one that
// makes a c10::IValue (c10::impl::GenericDict keyed by int or str, c10::impl::GenericList and
// c10::ivalue::Tuple of AnyType, double, int64, bool, string, None, tensors detached and on the
// CPU) and passes it to torch::jit::pickle_save, as hc_save does for a dict of tensors.
type TorchValue struct {
	Codes   []int64
	Floats  []float64
	Strings []string
	Tensors []*bridge.Tensor
}

func (v *TorchValue) none()       { v.Codes = append(v.Codes, TagNone) }
func (v *TorchValue) int(n int64) { v.Codes = append(v.Codes, TagInt, n) }
func (v *TorchValue) list(n int)  { v.Codes = append(v.Codes, TagList, int64(n)) }
func (v *TorchValue) tuple(n int) { v.Codes = append(v.Codes, TagTuple, int64(n)) }
func (v *TorchValue) dict(n int)  { v.Codes = append(v.Codes, TagDict, int64(n)) }
func (v *TorchValue) float(f float64) {
	v.Codes = append(v.Codes, TagFloat)
	v.Floats = append(v.Floats, f)
}

func (v *TorchValue) bool(b bool) {
	n := int64(0)
	if b {
		n = 1
	}
	v.Codes = append(v.Codes, TagBool, n)
}

func (v *TorchValue) str(s string) {
	v.Codes = append(v.Codes, TagStr)
	v.Strings = append(v.Strings, s)
}

func (v *TorchValue) tensor(t *bridge.Tensor) {
	v.Codes = append(v.Codes, TagTensor)
	v.Tensors = append(v.Tensors, t)
}

// num writes a number of LBFGS's state: a 0-d tensor of dt, an int, or a float.
func (v *TorchValue) num(n num, dt bridge.DType) {
	switch {
	case n.ten:
		v.tensor(bridge.Scalar(n.v, dt))
	case n.v == math.Trunc(n.v) && math.Abs(n.v) < 1<<53:
		v.int(int64(n.v))
	default:
		v.float(n.v)
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

// TorchStateDict returns the state dict as torch.optim's state_dict() returns it, in prefix
// form (see TorchValue): {"state": {<param index>: {…}}, "param_groups": [{…, "params": […]}]}.
// As with StateDict, the state tensors are the optimizer's own; the 0-d tensors made for steps
// and scalars are new.
func (o *Optimizer) TorchStateDict() *TorchValue {
	v := &TorchValue{}
	v.dict(2)
	v.str("state")
	if o.kind == kindLBFGS {
		o.lbfgs.torchState(v)
	} else {
		n := 0
		for i := range o.state {
			if !o.state[i].empty() {
				n++
			}
		}
		v.dict(n)
		for i := range o.state {
			st := &o.state[i]
			if st.empty() {
				continue
			}
			v.int(int64(i))
			fields := 0
			for _, f := range stateFields[o.kind] {
				if f == "step" || f == "mu_product" || *st.field(f) != nil {
					fields++
				}
			}
			v.dict(fields)
			for _, f := range stateFields[o.kind] {
				switch f {
				case "step":
					v.str(f)
					if o.kind.intStep() {
						v.int(st.step)
					} else {
						v.tensor(bridge.Scalar(float64(st.step), bridge.Float32))
					}
				case "mu_product":
					v.str(f)
					v.tensor(bridge.Scalar(st.muProduct, bridge.Float32))
				default:
					if t := *st.field(f); t != nil {
						v.str(f)
						v.tensor(t)
					}
				}
			}
		}
	}
	v.str("param_groups")
	v.list(len(o.groups))
	keys := torchGroupKeys(o.kind)
	for _, g := range o.groups {
		n := len(keys) + len(g.extra) + 1
		if g.hasInitial {
			n++
		}
		v.dict(n)
		for _, key := range keys {
			v.str(key)
			if iv, ok := implValue(o.kind, key); ok {
				if iv == nil {
					v.none()
				} else {
					v.bool(iv.(bool))
				}
				continue
			}
			switch x := g.h.get(key).(type) {
			case float64:
				v.float(x)
			case bool:
				v.bool(x)
			case int:
				v.int(int64(x))
			case string:
				if x == "" {
					v.none()
				} else {
					v.str(x)
				}
			case [2]float64:
				v.tuple(2)
				v.float(x[0])
				v.float(x[1])
			default:
				panic(fmt.Sprintf("optim: TorchStateDict: %s has a %T", key, x))
			}
		}
		if g.hasInitial {
			v.str("initial_lr")
			v.float(g.initialLR)
		}
		for _, e := range g.extra {
			v.str(e.key)
			v.float(e.v)
		}
		v.str("params")
		v.list(len(g.params))
		for _, pi := range g.params {
			v.int(int64(pi))
		}
	}
	return v
}

// torchState writes LBFGS's state: {0: {"func_evals": …, …}}, or {} before the first step.
func (s *lbfgsState) torchState(v *TorchValue) {
	if s.funcEvals == 0 && s.nIter == 0 && s.d == nil {
		v.dict(0)
		return
	}
	v.dict(1)
	v.int(0)
	n := 2
	if s.hasAl {
		n++
	}
	if s.d != nil {
		n += 8
	}
	v.dict(n)
	v.str("func_evals")
	v.int(int64(s.funcEvals))
	v.str("n_iter")
	v.int(int64(s.nIter))
	dt := s.dtype()
	if s.hasAl {
		v.str("al")
		v.list(len(s.al))
		for i, a := range s.al {
			if s.alSet[i] {
				v.num(a, dt)
			} else {
				v.none()
			}
		}
	}
	if s.d == nil {
		return
	}
	v.str("d")
	v.tensor(s.d)
	v.str("t")
	v.num(s.t, dt)
	for _, l := range []struct {
		name string
		ts   []*bridge.Tensor
	}{{"old_dirs", s.oldDirs}, {"old_stps", s.oldStps}} {
		v.str(l.name)
		v.list(len(l.ts))
		for _, t := range l.ts {
			v.tensor(t)
		}
	}
	v.str("ro")
	v.list(len(s.ro))
	for _, r := range s.ro {
		v.num(r, dt)
	}
	v.str("H_diag")
	v.num(s.hDiag, dt)
	v.str("prev_flat_grad")
	v.tensor(s.prevFlatGrad)
	v.str("prev_loss")
	v.float(s.prevLoss)
}

// String renders the value as Python would print it (tensors as tensor(<shape>)), for logs
// and tests.
func (v *TorchValue) String() string {
	var b strings.Builder
	c, f, s, t := 0, 0, 0, 0
	var walk func()
	walk = func() {
		tag := v.Codes[c]
		c++
		switch tag {
		case TagNone:
			b.WriteString("None")
		case TagBool:
			b.WriteString(map[bool]string{false: "False", true: "True"}[v.Codes[c] != 0])
			c++
		case TagInt:
			fmt.Fprintf(&b, "%d", v.Codes[c])
			c++
		case TagFloat:
			fmt.Fprintf(&b, "%v", v.Floats[f])
			f++
		case TagStr:
			fmt.Fprintf(&b, "%q", v.Strings[s])
			s++
		case TagTensor:
			fmt.Fprintf(&b, "tensor(%v)", v.Tensors[t].Shape())
			t++
		case TagList, TagTuple, TagDict:
			n := int(v.Codes[c])
			c++
			brackets := map[int64][2]string{TagList: {"[", "]"}, TagTuple: {"(", ")"}, TagDict: {"{", "}"}}[tag]
			b.WriteString(brackets[0])
			for i := range n {
				if i > 0 {
					b.WriteString(", ")
				}
				if tag == TagDict {
					walk()
					b.WriteString(": ")
				}
				walk()
			}
			if tag == TagTuple && n == 1 {
				b.WriteString(",")
			}
			b.WriteString(brackets[1])
		default:
			fmt.Fprintf(&b, "<bad tag %d>", tag)
		}
	}
	if len(v.Codes) > 0 {
		walk()
	}
	return b.String()
}
