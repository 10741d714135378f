package nn

import (
	"strconv"

	"github.com/hotcb/hotcb/bridge"
)

// ModuleList holds modules of any kind as children named "0", "1", ... — PyTorch's
// nn.ModuleList. It has no Forward: the module that holds it calls its items. A struct field
// that is a slice or array of modules registers one by itself.
type ModuleList struct {
	Node
}

// NewModuleList makes a list of ms.
func NewModuleList(ms ...AnyModule) *ModuleList {
	l := &ModuleList{}
	l.kind = "ModuleList"
	for _, m := range ms {
		l.Append(m)
	}
	return l
}

// Append adds m at the end.
func (l *ModuleList) Append(m AnyModule) { l.Add(strconv.Itoa(len(l.children)), m) }

// Len is the number of modules.
func (l *ModuleList) Len() int {
	treeMu.Lock()
	defer treeMu.Unlock()
	return len(l.children)
}

// At returns module i.
func (l *ModuleList) At(i int) AnyModule {
	treeMu.Lock()
	defer treeMu.Unlock()
	return l.children[i].m
}

// Items lists the modules in order.
func (l *ModuleList) Items() []AnyModule {
	treeMu.Lock()
	defer treeMu.Unlock()
	out := make([]AnyModule, len(l.children))
	for i, c := range l.children {
		out[i] = c.m
	}
	return out
}

// setItems makes the list hold ms (a slice field's current elements; treeMu held) and says
// whether that changed it.
func (l *ModuleList) setItems(ms []AnyModule) bool {
	same := len(ms) == len(l.children)
	for i := 0; same && i < len(ms); i++ {
		same = l.children[i].m != nil && l.children[i].m.node() == ms[i].node()
	}
	if same {
		return false
	}
	for _, c := range l.children {
		if c.m != nil {
			if on := c.m.node(); on.parent == &l.Node {
				on.parent, on.name = nil, ""
			}
		}
	}
	l.children = l.children[:0]
	for i, m := range ms {
		l.checkNotAncestor(m.node(), "item "+strconv.Itoa(i))
		l.children = append(l.children, child{name: strconv.Itoa(i), m: m})
	}
	l.reparent()
	return true
}

// ModuleDict holds modules of any kind as children named by keys, in insertion order — PyTorch's
// nn.ModuleDict. It has no Forward.
type ModuleDict struct {
	Node
}

// NewModuleDict makes an empty dict.
func NewModuleDict() *ModuleDict {
	d := &ModuleDict{}
	d.kind = "ModuleDict"
	return d
}

// Set registers m under key (a name without dots); a key already there keeps its place and
// holds m instead.
func (d *ModuleDict) Set(key string, m AnyModule) {
	treeMu.Lock()
	if c := d.childNamed(key); c != nil {
		d.checkNotAncestor(m.node(), "item "+key)
		d.setChild(c, m)
		d.reparent()
		treeMu.Unlock()
		return
	}
	treeMu.Unlock()
	d.Add(key, m)
}

// Get returns the module under key.
func (d *ModuleDict) Get(key string) (AnyModule, bool) {
	treeMu.Lock()
	defer treeMu.Unlock()
	if c := d.childNamed(key); c != nil && c.m != nil {
		return c.m, true
	}
	return nil, false
}

// Keys lists the keys in insertion order.
func (d *ModuleDict) Keys() []string {
	treeMu.Lock()
	defer treeMu.Unlock()
	out := make([]string, 0, len(d.children))
	for _, c := range d.children {
		out = append(out, c.name)
	}
	return out
}

// Len is the number of modules.
func (d *ModuleDict) Len() int {
	treeMu.Lock()
	defer treeMu.Unlock()
	return len(d.children)
}

// Identity returns its input: a placeholder layer (a removed head, a skipped norm) that keeps
// names and hooks in place — PyTorch's nn.Identity.
type Identity struct {
	Node
}

// NewIdentity makes an Identity layer.
func NewIdentity() *Identity {
	i := &Identity{}
	i.kind = "Identity"
	return i
}

// Forward returns x.
func (i *Identity) Forward(x *bridge.Tensor) *bridge.Tensor { return i.Fire(x, x) }
