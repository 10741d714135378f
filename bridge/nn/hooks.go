package nn

import (
	"fmt"
	"sync"

	"github.com/hotcb/hotcb/bridge"
)

// ForwardHook receives, after a module's forward, its dotted name, the module, its input and its
// output — for a module with several inputs or outputs, the first of each (see FireAll), and the
// module as an nn.Module view whose Forward panics (Unwrap returns the module itself). It runs on
// the training goroutine, inside the forward pass: copy what you keep.
type ForwardHook func(name string, m Module, in, out *bridge.Tensor)

// ForwardHookAll receives, after a module's forward, its dotted name, the module and all its
// inputs and outputs, as the module passed them to FireAll (or Fire: one of each).
type ForwardHookAll func(name string, m AnyModule, ins, outs []*bridge.Tensor)

type hook struct {
	id   uint64
	name string
	m    AnyModule
	fn   ForwardHook
	all  ForwardHookAll
}

// hookView is how a ForwardHook sees a module whose Forward does not map one tensor to one tensor.
type hookView struct{ AnyModule }

func (v hookView) Forward(*bridge.Tensor) *bridge.Tensor {
	v.node().fail("its Forward is not Forward(x) → y: call it directly (nn.Unwrap(m) is the module)")
	return nil
}

// Training reports the module's mode, as Node.Training does.
func (v hookView) Training() bool { return v.node().Training() }

// asModule is m, or a view of it when m is not a Module.
func asModule(m AnyModule) Module {
	if mm, ok := m.(Module); ok {
		return mm
	}
	return hookView{m}
}

// Unwrap returns the module a ForwardHook's m stands for: m itself, or the module with several
// inputs or outputs that m is a view of.
func Unwrap(m Module) AnyModule {
	if v, ok := m.(hookView); ok {
		return v.AnyModule
	}
	return m
}

var (
	hookMu   sync.Mutex // serialises writers; readers load the slice atomically
	hookNext uint64
)

// HookHandle removes a registered hook.
type HookHandle struct {
	once  sync.Once
	nodes []*Node
	id    uint64
}

// Remove unregisters the hook; later forwards no longer call it. Safe to call twice.
func (h *HookHandle) Remove() {
	h.once.Do(func() {
		hookMu.Lock()
		defer hookMu.Unlock()
		for _, n := range h.nodes {
			old := n.hooks.Load()
			if old == nil {
				continue
			}
			var keep []hook
			for _, hk := range *old {
				if hk.id != h.id {
					keep = append(keep, hk)
				}
			}
			if len(keep) == 0 {
				n.hooks.Store(nil)
			} else {
				n.hooks.Store(&keep)
			}
		}
	})
}

// RegisterForwardHook calls fn after the forward of every module under root whose dotted name
// matches pattern (see Match); it is an error if none does.
func RegisterForwardHook(root AnyModule, pattern string, fn ForwardHook) (*HookHandle, error) {
	mods, err := matchSome(root, pattern)
	if err != nil {
		return nil, err
	}
	return RegisterForwardHookOn(mods, fn), nil
}

// RegisterForwardHookAll calls fn, with all inputs and outputs, after the forward of every module
// under root whose dotted name matches pattern (see Match); it is an error if none does.
func RegisterForwardHookAll(root AnyModule, pattern string, fn ForwardHookAll) (*HookHandle, error) {
	mods, err := matchSome(root, pattern)
	if err != nil {
		return nil, err
	}
	return registerHook(mods, hook{all: fn}), nil
}

func matchSome(root AnyModule, pattern string) ([]NamedModule, error) {
	mods, err := Match(root, pattern)
	if err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no module matches %q", pattern)
	}
	return mods, nil
}

// RegisterForwardHookOn calls fn after the forward of each of the given modules.
func RegisterForwardHookOn(mods []NamedModule, fn ForwardHook) *HookHandle {
	return registerHook(mods, hook{fn: fn})
}

func registerHook(mods []NamedModule, proto hook) *HookHandle {
	hookMu.Lock()
	defer hookMu.Unlock()
	hookNext++
	h := &HookHandle{id: hookNext}
	for _, nm := range mods {
		n := nm.Module.node()
		var list []hook
		if old := n.hooks.Load(); old != nil {
			list = append(list, *old...)
		}
		hk := proto
		hk.id, hk.name, hk.m = h.id, nm.Name, nm.Module
		list = append(list, hk)
		n.hooks.Store(&list)
		h.nodes = append(h.nodes, n)
	}
	return h
}

// Hooked reports whether a forward hook is registered on the module (one atomic load): a module
// that computes its forward elsewhere (a TorchScript submodule, package bridge/jit) records its
// inputs and outputs only then.
func (n *Node) Hooked() bool { return n.hooks.Load() != nil }

// Fire runs the module's forward hooks with its input and output and returns out. Every built-in
// layer ends its Forward with it; custom modules should too (FireAll for several inputs or
// outputs).
func (n *Node) Fire(in, out *bridge.Tensor) *bridge.Tensor {
	if hs := n.hooks.Load(); hs != nil {
		n.run(*hs, in, out, nil, nil)
	}
	return out
}

// FireAll is Fire for a module with several inputs or outputs: ForwardHooks see the first of each
// (nil if none), ForwardHookAlls see all. It returns the first output (nil if none), so that a
// module with one output can end with `return m.FireAll([]*bridge.Tensor{x, mask}, y)`.
func (n *Node) FireAll(ins []*bridge.Tensor, outs ...*bridge.Tensor) *bridge.Tensor {
	var in, out *bridge.Tensor
	if len(ins) > 0 {
		in = ins[0]
	}
	if len(outs) > 0 {
		out = outs[0]
	}
	if hs := n.hooks.Load(); hs != nil {
		if ins == nil {
			ins = []*bridge.Tensor{}
		}
		if outs == nil {
			outs = []*bridge.Tensor{}
		}
		n.run(*hs, in, out, ins, outs)
	}
	return out
}

func (n *Node) run(hs []hook, in, out *bridge.Tensor, ins, outs []*bridge.Tensor) {
	// Hooks keep what they create: they run outside any bridge.Scope around the step.
	bridge.Unscoped(func() {
		for _, h := range hs {
			if h.fn != nil {
				h.fn(h.name, asModule(h.m), in, out)
			}
			if h.all != nil {
				if ins == nil {
					ins, outs = []*bridge.Tensor{in}, []*bridge.Tensor{out}
				}
				h.all(h.name, h.m, ins, outs)
			}
		}
	})
}
