package nn

import (
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/hotcb/hotcb/bridge"
)

// AnyModule is any module: a struct that embeds Node, whatever its Forward takes and returns
// (an attention block's Forward(x, mask), an LSTM's Forward(x, h0, c0) (y, h, c)). Everything
// that walks a model — Parameters, StateDict, Train, To, hooks — takes an AnyModule.
type AnyModule interface {
	node() *Node
}

// Module is a module whose Forward maps one tensor to one tensor: what Sequential chains and
// what the trainer trains.
type Module interface {
	AnyModule
	// Forward computes the output for input x.
	Forward(x *bridge.Tensor) *bridge.Tensor
}

// Node is the state every module embeds: its children, parameters, buffers, mode and hooks.
type Node struct {
	kind     string // "Linear", "Conv2d", ... (for messages)
	name     string // name under the parent ("" for a root)
	parent   *Node
	children []child
	params   []tensorSlot
	buffers  []tensorSlot
	eval     bool // the zero value is training mode, as in PyTorch
	hooks    atomic.Pointer[[]hook]
}

// child is a registered sub-module; field is the struct field it is bound to ("" for none).
type child struct {
	name  string
	m     AnyModule // nil when its field was set to nil (skipped, as PyTorch skips None)
	field string
}

// tensorSlot is a registered parameter or buffer; field is the struct field it is bound to.
type tensorSlot struct {
	name  string
	t     *bridge.Tensor
	field string
}

// treeMu serialises what registers and what walks module trees: discovery (see sync.go) writes
// the registrations the first time a walk reads them.
var treeMu sync.Mutex

func (n *Node) node() *Node { return n }

// Add registers m as a child named name (names must be unique among the module's children,
// parameters and buffers, and contain no dot). A child that a struct field holds needs no Add:
// the first walk of the tree finds it (see the package doc); Add names it explicitly.
func (n *Node) Add(name string, m AnyModule) {
	treeMu.Lock()
	defer treeMu.Unlock()
	if name == "" || strings.Contains(name, ".") {
		panic(fmt.Sprintf("nn: bad child name %q", name))
	}
	for _, c := range n.children {
		if c.name == name {
			panic(fmt.Sprintf("nn: child %q registered twice", name))
		}
	}
	n.checkFree(name)
	cn := m.node()
	n.checkNotAncestor(cn, "child "+name)
	cn.name, cn.parent = name, n
	n.children = append(n.children, child{name: name, m: m})
}

// Param registers t as a trainable parameter named name (it is made to require grad) and
// returns it.
func (n *Node) Param(name string, t *bridge.Tensor) *bridge.Tensor {
	treeMu.Lock()
	defer treeMu.Unlock()
	n.checkSlotName(name)
	if t != nil {
		t.SetRequiresGrad(true)
	}
	n.params = append(n.params, tensorSlot{name: name, t: t})
	return t
}

// Buffer registers t as state that is saved in the state dict but not trained (running stats).
func (n *Node) Buffer(name string, t *bridge.Tensor) *bridge.Tensor {
	treeMu.Lock()
	defer treeMu.Unlock()
	n.checkSlotName(name)
	n.buffers = append(n.buffers, tensorSlot{name: name, t: t})
	return t
}

func (n *Node) checkSlotName(name string) {
	if name == "" {
		panic("nn: empty parameter or buffer name")
	}
	n.checkFree(name)
}

// checkFree panics when name is already a child, parameter or buffer of n, as PyTorch's
// register_* do ("attribute already exists").
func (n *Node) checkFree(name string) {
	used := ""
	for _, p := range n.params {
		if p.name == name {
			used = "parameter"
		}
	}
	for _, b := range n.buffers {
		if b.name == name {
			used = "buffer"
		}
	}
	for _, c := range n.children {
		if c.name == name {
			used = "child"
		}
	}
	if used != "" {
		n.fail("%q is already a %s of this module", name, used)
	}
}

// checkNotAncestor panics when registering cn under n would make a cycle.
func (n *Node) checkNotAncestor(cn *Node, what string) {
	for p := n; p != nil; p = p.parent {
		if p == cn {
			n.fail("%s is this module or one of its ancestors: a module tree has no cycles (tag a back-reference field `nn:\"-\"`)", what)
		}
	}
}

// Training reports whether the module is in training mode.
func (n *Node) Training() bool { return !n.eval }

// Path is the module's dotted name from the root ("" for the root itself). A module registered
// in two places reports the first.
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
	kind := n.kind
	if kind == "" {
		kind = "Module"
	}
	if p := n.Path(); p != "" {
		return "nn." + kind + "(" + p + ")"
	}
	return "nn." + kind
}

// fail panics with a *bridge.Error naming the module.
func (n *Node) fail(format string, args ...any) {
	panic(&bridge.Error{Op: n.label(), Msg: fmt.Sprintf(format, args...)})
}

// NamedModule is a module with its dotted name.
type NamedModule struct {
	Name   string
	Module AnyModule
}

// walk visits m and its descendants depth first, each with its dotted name, holding treeMu, after
// bringing each module's registrations up to date with its struct fields (sync.go). With unique,
// a module reachable by two paths is visited once, under the first (PyTorch's named_modules);
// without, once per path (PyTorch's state_dict). A cycle panics.
func walkTree(m AnyModule, unique bool, visit func(prefix string, m AnyModule, n *Node)) {
	treeMu.Lock()
	defer treeMu.Unlock()
	synced := make(map[*Node]bool, 64)
	var stack []*Node
	var scratch []structField
	var rec func(prefix string, m AnyModule)
	rec = func(prefix string, m AnyModule) {
		n := m.node()
		for _, a := range stack {
			if a == n {
				a.fail("the module at %q is its own ancestor: a module tree has no cycles (tag a back-reference field `nn:\"-\"`)", prefix)
			}
		}
		if synced[n] {
			if unique {
				return
			}
		} else {
			synced[n] = true
			scratch = n.sync(m, scratch)
		}
		visit(prefix, m, n)
		stack = append(stack, n)
		for _, c := range n.children {
			if c.m != nil {
				rec(join(prefix, c.name), c.m)
			}
		}
		stack = stack[:len(stack)-1]
	}
	rec("", m)
}

// NamedModules lists m and all its descendants, depth first, as PyTorch's named_modules does: the
// root is named "", and a module registered twice is listed once, under its first name.
func NamedModules(m AnyModule) []NamedModule {
	var out []NamedModule
	walkTree(m, true, func(prefix string, m AnyModule, _ *Node) {
		out = append(out, NamedModule{prefix, m})
	})
	return out
}

// Children lists m's direct children (each module once, as PyTorch's named_children).
func Children(m AnyModule) []NamedModule {
	treeMu.Lock()
	defer treeMu.Unlock()
	n := m.node()
	n.sync(m, nil)
	var out []NamedModule
	seen := map[*Node]bool{}
	for _, c := range n.children {
		if c.m != nil && !seen[c.m.node()] {
			seen[c.m.node()] = true
			out = append(out, NamedModule{c.name, c.m})
		}
	}
	return out
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// NamedParameters lists the trainable parameters with PyTorch's names, in PyTorch's order. A
// tensor registered twice — a weight tied between two layers — is listed once, under its first
// name, as PyTorch's named_parameters does.
func NamedParameters(m AnyModule) []bridge.Named {
	var out []bridge.Named
	seen := make(map[*bridge.Tensor]bool, 64)
	walkTree(m, true, func(prefix string, _ AnyModule, n *Node) {
		for _, p := range n.params {
			if p.t != nil && !seen[p.t] {
				seen[p.t] = true
				out = append(out, bridge.Named{Name: join(prefix, p.name), Tensor: p.t})
			}
		}
	})
	return out
}

// Parameters lists the trainable parameters, each tensor once (see NamedParameters).
func Parameters(m AnyModule) []*bridge.Tensor {
	named := NamedParameters(m)
	out := make([]*bridge.Tensor, len(named))
	for i, p := range named {
		out[i] = p.Tensor
	}
	return out
}

// NamedBuffers lists the buffers (running statistics and other registered non-parameters) with
// PyTorch's names, in PyTorch's order, each tensor once, as PyTorch's named_buffers does. They
// are the module's own tensors, not copies.
func NamedBuffers(m AnyModule) []bridge.Named {
	var out []bridge.Named
	seen := make(map[*bridge.Tensor]bool, 16)
	walkTree(m, true, func(prefix string, _ AnyModule, n *Node) {
		for _, b := range n.buffers {
			if b.t != nil && !seen[b.t] {
				seen[b.t] = true
				out = append(out, bridge.Named{Name: join(prefix, b.name), Tensor: b.t})
			}
		}
	})
	return out
}

// stateItems lists every registered parameter and buffer under every name it has, in
// state-dict order: for each module its parameters, then its buffers, then its children.
func stateItems(m AnyModule) []bridge.Named {
	var out []bridge.Named
	walkTree(m, false, func(prefix string, _ AnyModule, n *Node) {
		for _, list := range [][]tensorSlot{n.params, n.buffers} {
			for _, p := range list {
				if p.t != nil {
					out = append(out, bridge.Named{Name: join(prefix, p.name), Tensor: p.t})
				}
			}
		}
	})
	return out
}

// StateDict lists parameters and buffers as PyTorch's state_dict() does: for each module its
// parameters, then its buffers, then its children. A tied tensor is listed under each of its
// names (as in PyTorch: loading such a state dict back fills the one tensor).
func StateDict(m AnyModule) []bridge.Named {
	out := stateItems(m)
	for i := range out {
		out[i].Tensor = out[i].Tensor.Detach()
	}
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
// Nothing is copied unless everything fits. Keys are copied in the model's state-dict order, so
// for a tied tensor the last of its names wins, as in PyTorch.
func LoadStateDict(m AnyModule, items []bridge.Named, strict bool) error {
	have := map[string]*bridge.Tensor{}
	var order []string
	for _, it := range stateItems(m) {
		if _, dup := have[it.Name]; !dup {
			order = append(order, it.Name)
		}
		have[it.Name] = it.Tensor
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
			for _, k := range order {
				if src, ok := given[k]; ok {
					have[k].CopyFrom(src)
				}
			}
		})
	})
}

// Train sets training mode (on=true) or evaluation mode on m and all its descendants.
func Train(m AnyModule, on bool) {
	walkTree(m, true, func(_ string, _ AnyModule, n *Node) { n.eval = !on })
}

// Eval is Train(m, false).
func Eval(m AnyModule) { Train(m, false) }

// To moves every parameter and buffer to dev (and/or converts float ones to a dtype), in place:
// tensors keep their identity, so an optimizer built before To still holds them (and tied ones
// stay tied).
func To(m AnyModule, opts ...bridge.Option) {
	var all []*bridge.Tensor
	seen := map[*bridge.Tensor]bool{}
	walkTree(m, true, func(_ string, _ AnyModule, n *Node) {
		for _, list := range [][]tensorSlot{n.params, n.buffers} {
			for _, p := range list {
				if p.t != nil && !seen[p.t] {
					seen[p.t] = true
					all = append(all, p.t)
				}
			}
		}
	})
	for _, t := range all {
		o := opts
		if !t.DType().IsFloat() {
			o = devicesOnly(opts)
		}
		bridge.NoGrad(func() { t.SetData(t.Detach().To(o...)) })
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
func ZeroGrad(m AnyModule) {
	for _, p := range Parameters(m) {
		p.ZeroGrad()
	}
}

// Find returns the module at a dotted name ("" is m itself), following registered names — a
// module registered twice is found under either.
func Find(m AnyModule, name string) (AnyModule, bool) {
	if name == "" {
		return m, true
	}
	treeMu.Lock()
	defer treeMu.Unlock()
	cur := m
	for _, part := range strings.Split(name, ".") {
		n := cur.node()
		n.sync(cur, nil)
		c := n.childNamed(part)
		if c == nil || c.m == nil {
			return nil, false
		}
		cur = c.m
	}
	return cur, true
}

// Match lists the modules whose dotted names match a pattern: an exact name, or a glob where
// * matches within one dotted component ("features.*") and a trailing ".**" matches any depth.
func Match(m AnyModule, pattern string) ([]NamedModule, error) {
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
func Kind(m AnyModule) string {
	if k := m.node().kind; k != "" {
		return k
	}
	return "Module"
}
