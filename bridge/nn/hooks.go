package nn

import (
	"fmt"
	"sync"

	"github.com/hotcb/hotcb/bridge"
)

// ForwardHook receives, after a module's forward, its dotted name, the module, its input and its
// output. It runs on the training goroutine, inside the forward pass: copy what you keep.
type ForwardHook func(name string, m Module, in, out *bridge.Tensor)

type hook struct {
	id   uint64
	name string
	m    Module
	fn   ForwardHook
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
func RegisterForwardHook(root Module, pattern string, fn ForwardHook) (*HookHandle, error) {
	mods, err := Match(root, pattern)
	if err != nil {
		return nil, err
	}
	if len(mods) == 0 {
		return nil, fmt.Errorf("no module matches %q", pattern)
	}
	return RegisterForwardHookOn(mods, fn), nil
}

// RegisterForwardHookOn calls fn after the forward of each of the given modules.
func RegisterForwardHookOn(mods []NamedModule, fn ForwardHook) *HookHandle {
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
		list = append(list, hook{id: h.id, name: nm.Name, m: nm.Module, fn: fn})
		n.hooks.Store(&list)
		h.nodes = append(h.nodes, n)
	}
	return h
}

// Fire runs the module's forward hooks with its input and output and returns out. Every built-in
// layer ends its Forward with it; custom modules should too.
func (n *Node) Fire(in, out *bridge.Tensor) *bridge.Tensor {
	if hs := n.hooks.Load(); hs != nil {
		// Hooks keep what they create: they run outside any bridge.Scope around the step.
		bridge.Unscoped(func() {
			for _, h := range *hs {
				h.fn(h.name, h.m, in, out)
			}
		})
	}
	return out
}
