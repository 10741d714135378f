package nn

import (
	"fmt"
	"path"
	"strings"
	"sync/atomic"

	"github.com/hotcb/hotcb/bridge"
)

// Module is a network layer or a model made of layers.
type Module interface {
	// Forward computes the output for input x.
	Forward(x *bridge.Tensor) *bridge.Tensor
	node() *Node
}

// Node is the state every module embeds: its children, parameters, buffers, mode and hooks.
type Node struct {
	kind     string // "Linear", "Conv2d", ... (for messages)
	name     string // name under the parent ("" for a root)
	parent   *Node
	children []child
	params   []bridge.Named
	buffers  []bridge.Named
	eval     bool // the zero value is training mode, as in PyTorch
	hooks    atomic.Pointer[[]hook]
}

type child struct {
	name string
	m    Module
}

func (n *Node) node() *Node { return n }

// Add registers m as a child named name (names must be unique and contain no dot).
func (n *Node) Add(name string, m Module) {
	if name == "" || strings.Contains(name, ".") {
		panic(fmt.Sprintf("nn: bad child name %q", name))
	}
	for _, c := range n.children {
		if c.name == name {
			panic(fmt.Sprintf("nn: child %q registered twice", name))
		}
	}
	cn := m.node()
	cn.name, cn.parent = name, n
	n.children = append(n.children, child{name, m})
}

// Param registers t as a trainable parameter named name (it is made to require grad) and
// returns it.
func (n *Node) Param(name string, t *bridge.Tensor) *bridge.Tensor {
	if t != nil {
		t.SetRequiresGrad(true)
	}
	n.params = append(n.params, bridge.Named{Name: name, Tensor: t})
	return t
}

// Buffer registers t as state that is saved in the state dict but not trained (running stats).
func (n *Node) Buffer(name string, t *bridge.Tensor) *bridge.Tensor {
	n.buffers = append(n.buffers, bridge.Named{Name: name, Tensor: t})
	return t
}

// Training reports whether the module is in training mode.
func (n *Node) Training() bool { return !n.eval }

// Path is the module's dotted name from the root ("" for the root itself).
func (n *Node) Path() string {
	var parts []string
	for p := n; p != nil && p.parent != nil; p = p.parent {
		parts = append(parts, p.name)
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, ".")
}

// label names the module in error messages: "nn.Linear(classifier)".
func (n *Node) label() string {
	if p := n.Path(); p != "" {
		return "nn." + n.kind + "(" + p + ")"
	}
	return "nn." + n.kind
}

// fail panics with a *bridge.Error naming the module.
func (n *Node) fail(format string, args ...any) {
	panic(&bridge.Error{Op: n.label(), Msg: fmt.Sprintf(format, args...)})
}

// NamedModule is a module with its dotted name.
type NamedModule struct {
	Name   string
	Module Module
}

// NamedModules lists m and all its descendants, depth first, as PyTorch's named_modules does
// (the root is named "").
func NamedModules(m Module) []NamedModule {
	var out []NamedModule
	var walk func(prefix string, m Module)
	walk = func(prefix string, m Module) {
		out = append(out, NamedModule{prefix, m})
		for _, c := range m.node().children {
			walk(join(prefix, c.name), c.m)
		}
	}
	walk("", m)
	return out
}

// Children lists m's direct children.
func Children(m Module) []NamedModule {
	var out []NamedModule
	for _, c := range m.node().children {
		out = append(out, NamedModule{c.name, c.m})
	}
	return out
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// NamedParameters lists the trainable parameters with PyTorch's names, in PyTorch's order.
func NamedParameters(m Module) []bridge.Named {
	var out []bridge.Named
	for _, nm := range NamedModules(m) {
		for _, p := range nm.Module.node().params {
			if p.Tensor != nil {
				out = append(out, bridge.Named{Name: join(nm.Name, p.Name), Tensor: p.Tensor})
			}
		}
	}
	return out
}

// Parameters lists the trainable parameters.
func Parameters(m Module) []*bridge.Tensor {
	named := NamedParameters(m)
	out := make([]*bridge.Tensor, len(named))
	for i, p := range named {
		out[i] = p.Tensor
	}
	return out
}

// StateDict lists parameters and buffers as PyTorch's state_dict() does: for each module its
// parameters, then its buffers, then its children.
func StateDict(m Module) []bridge.Named {
	var out []bridge.Named
	var walk func(prefix string, m Module)
	walk = func(prefix string, m Module) {
		n := m.node()
		for _, list := range [][]bridge.Named{n.params, n.buffers} {
			for _, p := range list {
				if p.Tensor != nil {
					out = append(out, bridge.Named{Name: join(prefix, p.Name), Tensor: p.Tensor.Detach()})
				}
			}
		}
		for _, c := range n.children {
			walk(join(prefix, c.name), c.m)
		}
	}
	walk("", m)
	return out
}

// StateDictError lists everything that did not fit when loading a state dict.
type StateDictError struct {
	Missing    []string // in the model, not in the state dict
	Unexpected []string // in the state dict, not in the model
	Mismatched []string // "name: checkpoint [a b] vs model [c d]"
}

func (e *StateDictError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, "missing keys: "+strings.Join(e.Missing, ", "))
	}
	if len(e.Unexpected) > 0 {
		parts = append(parts, "unexpected keys: "+strings.Join(e.Unexpected, ", "))
	}
	if len(e.Mismatched) > 0 {
		parts = append(parts, "shape mismatches: "+strings.Join(e.Mismatched, "; "))
	}
	return "load state dict: " + strings.Join(parts, "; ")
}

// LoadStateDict copies values into m's parameters and buffers (converting dtype and device).
// Strict mode, as in PyTorch, fails on missing or unexpected keys; shape mismatches always fail.
// Nothing is copied unless everything fits.
func LoadStateDict(m Module, items []bridge.Named, strict bool) error {
	have := map[string]*bridge.Tensor{}
	var order []string
	for _, nm := range NamedModules(m) {
		n := nm.Module.node()
		for _, list := range [][]bridge.Named{n.params, n.buffers} {
			for _, p := range list {
				if p.Tensor != nil {
					k := join(nm.Name, p.Name)
					have[k] = p.Tensor
					order = append(order, k)
				}
			}
		}
	}
	given := map[string]*bridge.Tensor{}
	e := &StateDictError{}
	for _, it := range items {
		if _, ok := have[it.Name]; !ok {
			e.Unexpected = append(e.Unexpected, it.Name)
			continue
		}
		given[it.Name] = it.Tensor
	}
	for _, k := range order {
		src, ok := given[k]
		if !ok {
			e.Missing = append(e.Missing, k)
			continue
		}
		if ws, gs := have[k].Shape(), src.Shape(); !ws.Equal(gs) {
			e.Mismatched = append(e.Mismatched, fmt.Sprintf("%s: checkpoint %v vs model %v", k, gs, ws))
		}
	}
	if len(e.Mismatched) > 0 || (strict && (len(e.Missing) > 0 || len(e.Unexpected) > 0)) {
		return e
	}
	return bridge.Try(func() {
		bridge.NoGrad(func() {
			for k, src := range given {
				have[k].CopyFrom(src)
			}
		})
	})
}

// Train sets training mode (on=true) or evaluation mode on m and all its descendants.
func Train(m Module, on bool) {
	for _, nm := range NamedModules(m) {
		nm.Module.node().eval = !on
	}
}

// Eval is Train(m, false).
func Eval(m Module) { Train(m, false) }

// To moves every parameter and buffer to dev (and/or converts float ones to a dtype), in place:
// tensors keep their identity, so an optimizer built before To still holds them.
func To(m Module, opts ...bridge.Option) {
	for _, nm := range NamedModules(m) {
		n := nm.Module.node()
		for _, list := range [][]bridge.Named{n.params, n.buffers} {
			for _, p := range list {
				if p.Tensor == nil {
					continue
				}
				o := opts
				if !p.Tensor.DType().IsFloat() {
					o = devicesOnly(opts)
				}
				bridge.NoGrad(func() { p.Tensor.SetData(p.Tensor.Detach().To(o...)) })
			}
		}
	}
}

func devicesOnly(opts []bridge.Option) []bridge.Option {
	var out []bridge.Option
	for _, o := range opts {
		if d, ok := o.(bridge.Device); ok {
			out = append(out, d)
		}
	}
	return out
}

// ZeroGrad drops the gradients of all parameters (set to none).
func ZeroGrad(m Module) {
	for _, p := range Parameters(m) {
		p.ZeroGrad()
	}
}

// Find returns the module at a dotted name ("" is m itself).
func Find(m Module, name string) (Module, bool) {
	for _, nm := range NamedModules(m) {
		if nm.Name == name {
			return nm.Module, true
		}
	}
	return nil, false
}

// Match lists the modules whose dotted names match a pattern: an exact name, or a glob where
// * matches within one dotted component ("features.*") and a trailing ".**" matches any depth.
func Match(m Module, pattern string) ([]NamedModule, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("bad module pattern %q: %w", pattern, err)
	}
	var out []NamedModule
	for _, nm := range NamedModules(m) {
		if nm.Name == "" {
			continue
		}
		if matchName(pattern, nm.Name) {
			out = append(out, nm)
		}
	}
	return out, nil
}

func matchName(pattern, name string) bool {
	if base, ok := strings.CutSuffix(pattern, ".**"); ok {
		return name == base || strings.HasPrefix(name, base+".") || matchName(base, name)
	}
	// path.Match treats "/" as the separator; dotted names use ".".
	ok, _ := path.Match(strings.ReplaceAll(pattern, ".", "/"), strings.ReplaceAll(name, ".", "/"))
	return ok
}

// SetKind names the layer type a custom module reports through Kind, e.g. "Conv2d" for a
// convolution written with package aten, so that what finds layers by type (featviz draws every
// Conv2d by default) finds it.
func (n *Node) SetKind(kind string) { n.kind = kind }

// Kind is the module's layer type ("Conv2d", "Linear", ...; "Module" for custom ones that do not
// SetKind).
func Kind(m Module) string {
	if k := m.node().kind; k != "" {
		return k
	}
	return "Module"
}
