package nn

import (
	"reflect"
	"strings"
	"sync"
	"unicode"
	"unsafe"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Discovery: what PyTorch's Module.__setattr__ does when a module assigns a sub-module or an
// nn.Parameter to an attribute, done here by reading the module's struct fields each time a walk
// of the tree (Parameters, StateDict, Train, To, hooks ...) reaches the module:
//
//   - a field holding a module (a pointer or interface, or a struct value such as nn.Linear)
//     registers it as a child; a slice or array of modules registers a ModuleList child;
//   - a field holding a *bridge.Tensor that requires grad and is a leaf (a tensor made trainable
//     with SetRequiresGrad) registers it as a parameter; `nn:",param"` and `nn:",buffer"` make
//     any tensor one; other tensors are plain state, left alone (as plain tensor attributes are
//     in PyTorch);
//   - the name is the field's name in snake_case (LMHead → lm_head, cAttn → c_attn), or the tag's
//     (`nn:"name"`); `nn:"-"` leaves the field out;
//   - a field stays bound to what it registered (or to what Add, Param or Buffer registered with
//     the same value, or failing that the same name): assigning the field later replaces the
//     registration, as assigning a PyTorch attribute does — this is how weights are tied
//     (head.Weight = tok.Weight);
//   - what cannot be registered safely fails loudly, naming the field: a name already taken, a
//     map of modules (use ModuleDict), a slice mixing registered and unregistered modules, a
//     non-leaf tensor assigned to a parameter field, a field holding an ancestor.
//
// Exported and unexported fields are read alike.

// fieldKind classifies a struct field by its static type.
type fieldKind uint8

const (
	fkModule      fieldKind = iota + 1 // a pointer or interface type that is an AnyModule
	fkModuleValue                      // a struct value whose address is an AnyModule (Proj nn.Linear)
	fkTensor                           // *bridge.Tensor
	fkIface                            // another interface type: classified by its dynamic value
	fkModuleSlice                      // a slice or array of modules
	fkModuleMap                        // a map whose values are modules
	fkEmbedded                         // an embedded module: n itself when its node() is promoted
)

type fieldInfo struct {
	index         int
	goName        string
	key           string // the binding key: the declaring type and the field, whatever path reaches it
	name          string
	kind          fieldKind
	param, buffer bool // tag options
}

var (
	anyModuleType = reflect.TypeOf((*AnyModule)(nil)).Elem()
	tensorType    = reflect.TypeOf((*bridge.Tensor)(nil))
	nodeType      = reflect.TypeOf(Node{})
	fieldCache    sync.Map // reflect.Type → []fieldInfo
)

// isModuleType: a pointer or interface type whose values are modules.
func isModuleType(t reflect.Type) bool {
	return (t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface) && t.Implements(anyModuleType)
}

// isModuleValueType: a struct type whose address is a module.
func isModuleValueType(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && reflect.PointerTo(t).Implements(anyModuleType)
}

func fieldsOf(t reflect.Type) []fieldInfo {
	if v, ok := fieldCache.Load(t); ok {
		return v.([]fieldInfo)
	}
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == nodeType {
			continue
		}
		fi := fieldInfo{index: i, goName: f.Name, key: t.String() + "." + f.Name}
		if tag, ok := f.Tag.Lookup("nn"); ok {
			name, opts, _ := strings.Cut(tag, ",")
			if name == "-" {
				continue
			}
			fi.name = name
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "param":
					fi.param = true
				case "buffer":
					fi.buffer = true
				}
			}
		}
		if fi.name == "" {
			fi.name = snakeCase(f.Name)
		}
		ft := f.Type
		switch {
		case f.Anonymous && (isModuleType(ft) || isModuleValueType(ft)):
			fi.kind = fkEmbedded
		case ft == tensorType:
			fi.kind = fkTensor
		case isModuleType(ft):
			fi.kind = fkModule
		case isModuleValueType(ft):
			fi.kind = fkModuleValue
		case ft.Kind() == reflect.Interface:
			fi.kind = fkIface
		case (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array) && (isModuleType(ft.Elem()) || isModuleValueType(ft.Elem())):
			fi.kind = fkModuleSlice
		case ft.Kind() == reflect.Map && (isModuleType(ft.Elem()) || isModuleValueType(ft.Elem())):
			fi.kind = fkModuleMap
		default:
			continue
		}
		out = append(out, fi)
	}
	fieldCache.Store(t, out)
	return out
}

// snakeCase turns a Go field name into a PyTorch attribute name: Features → features,
// LMHead → lm_head, lnF → ln_f, Block1Attn → block1_attn, Conv2D → conv2d, QKV → qkv.
func snakeCase(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
				if unicode.IsLower(prev) || (nextLower && (unicode.IsUpper(prev) || unicode.IsDigit(prev))) {
					b.WriteByte('_')
				}
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// field is one struct field of a module, read.
type structField struct {
	key  string // what binds it to a registration (fieldInfo.key)
	name string // the Go field's name, for messages
	info *fieldInfo
	v    reflect.Value
}

// readable returns f itself, or for an unexported field a view of it that Interface can read.
func readableField(f reflect.Value) reflect.Value {
	if f.CanInterface() {
		return f
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// collect reads the fields of the struct v (addressable) that belong to n, going through embedded
// modules whose node is n.
func (n *Node) collect(v reflect.Value, out *[]structField) {
	infos := fieldsOf(v.Type())
	for i := range infos {
		fi := &infos[i]
		f := readableField(v.Field(fi.index))
		if fi.kind == fkEmbedded {
			// An embedded module that supplies n (its node() is promoted) is n: its fields are
			// n's. Another is a child like any field's.
			var mod AnyModule
			if f.Kind() == reflect.Struct {
				mod = f.Addr().Interface().(AnyModule)
			} else if !f.IsNil() {
				mod, _ = f.Interface().(AnyModule)
			}
			if mod == nil {
				continue
			}
			if mod.node() == n {
				if inner := reflect.ValueOf(mod); inner.Kind() == reflect.Pointer && inner.Elem().Kind() == reflect.Struct {
					n.collect(inner.Elem(), out)
				}
				continue
			}
		}
		*out = append(*out, structField{key: fi.key, name: fi.goName, info: fi, v: f})
	}
}

// sync brings n's registrations up to date with the struct fields of m (m.node() == n), reading
// them into scratch, which it returns for the next call. Call it with treeMu held.
func (n *Node) sync(m AnyModule, scratch []structField) []structField {
	rv := reflect.ValueOf(m)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return scratch
	}
	fields := scratch[:0]
	n.collect(rv.Elem(), &fields)
	if len(fields) == 0 {
		return fields
	}
	changed := false
	var pending []structField
	// First what is bound already, or bound by identity, so that no field takes by name what
	// another holds.
	for _, f := range fields {
		done, ch := n.syncBound(f)
		changed = changed || ch
		if !done {
			pending = append(pending, f)
		}
	}
	for _, f := range pending {
		changed = n.syncNew(f) || changed
	}
	if changed {
		n.reparent()
	}
	return fields
}

// moduleOf reads a module field's value (nil when it holds none).
func (n *Node) moduleOf(f structField) AnyModule {
	switch f.info.kind {
	case fkModuleValue:
		return f.v.Addr().Interface().(AnyModule)
	case fkModule, fkIface, fkEmbedded:
		if f.v.Kind() == reflect.Struct { // an embedded module value
			return f.v.Addr().Interface().(AnyModule)
		}
		if f.v.Kind() == reflect.Pointer && f.v.IsNil() {
			return nil
		}
		if f.v.Kind() == reflect.Interface && f.v.IsNil() {
			return nil
		}
		m, _ := f.v.Interface().(AnyModule)
		if m != nil && m.node() == n {
			return nil // the module itself (an embedded pointer that supplies n)
		}
		return m
	}
	return nil
}

// tensorOf reads a tensor field's value; ok is false when the field holds something else.
func fieldTensor(f structField) (t *bridge.Tensor, ok bool) {
	switch f.info.kind {
	case fkTensor:
		return f.v.Interface().(*bridge.Tensor), true
	case fkIface:
		if f.v.IsNil() {
			return nil, false
		}
		t, ok = f.v.Interface().(*bridge.Tensor)
		return t, ok
	}
	return nil, false
}

// elems reads a slice, array or map field's modules (nil ones skipped).
func moduleElems(f structField) []AnyModule {
	var out []AnyModule
	v := f.v
	add := func(e reflect.Value) {
		if e.Kind() == reflect.Struct {
			if e.CanAddr() {
				out = append(out, readableField(e).Addr().Interface().(AnyModule))
			}
			return
		}
		if e.IsNil() {
			return
		}
		if m, ok := readableField(e).Interface().(AnyModule); ok {
			out = append(out, m)
		}
	}
	if v.Kind() == reflect.Map {
		for _, k := range v.MapKeys() {
			add(v.MapIndex(k))
		}
		return out
	}
	for i := range v.Len() {
		add(v.Index(i))
	}
	return out
}

func (n *Node) childBoundTo(key string) *child {
	for i := range n.children {
		if n.children[i].field == key {
			return &n.children[i]
		}
	}
	return nil
}

func (n *Node) childHolding(m AnyModule, unboundOnly bool) *child {
	for i := range n.children {
		c := &n.children[i]
		if c.m != nil && c.m.node() == m.node() && (!unboundOnly || c.field == "") {
			return c
		}
	}
	return nil
}

func (n *Node) childNamed(name string) *child {
	for i := range n.children {
		if n.children[i].name == name {
			return &n.children[i]
		}
	}
	return nil
}

// slotBoundTo finds the parameter or buffer bound to a field; param says which.
func (n *Node) slotBoundTo(key string) (s *tensorSlot, param bool) {
	for i := range n.params {
		if n.params[i].field == key {
			return &n.params[i], true
		}
	}
	for i := range n.buffers {
		if n.buffers[i].field == key {
			return &n.buffers[i], false
		}
	}
	return nil, false
}

func (n *Node) slotHolding(t *bridge.Tensor) (s *tensorSlot, param bool) {
	for i := range n.params {
		if n.params[i].t == t && n.params[i].field == "" {
			return &n.params[i], true
		}
	}
	for i := range n.buffers {
		if n.buffers[i].t == t && n.buffers[i].field == "" {
			return &n.buffers[i], false
		}
	}
	return nil, false
}

func (n *Node) slotNamed(name string) (s *tensorSlot, param bool) {
	for i := range n.params {
		if n.params[i].name == name {
			return &n.params[i], true
		}
	}
	for i := range n.buffers {
		if n.buffers[i].name == name {
			return &n.buffers[i], false
		}
	}
	return nil, false
}

// syncBound handles a field that is bound already or that holds what an unbound registration
// holds. done is false when the field is left for syncNew.
func (n *Node) syncBound(f structField) (done, changed bool) {
	switch f.info.kind {
	case fkModule, fkModuleValue, fkEmbedded, fkIface:
		if t, ok := fieldTensor(f); ok {
			return n.syncBoundTensor(f, t)
		}
		m := n.moduleOf(f)
		if c := n.childBoundTo(f.key); c != nil {
			if c.m != m {
				if m != nil {
					n.checkNotAncestor(m.node(), "field "+f.name)
				}
				n.setChild(c, m)
				return true, true
			}
			return true, false
		}
		if m == nil {
			return true, false
		}
		if c := n.childHolding(m, true); c != nil {
			c.field = f.key
			return true, false
		}
		return false, false
	case fkTensor:
		t, _ := fieldTensor(f)
		return n.syncBoundTensor(f, t)
	case fkModuleSlice:
		ms := moduleElems(f)
		if c := n.childBoundTo(f.key); c != nil {
			l, ok := c.m.(*ModuleList)
			if !ok {
				n.fail("field %s: its ModuleList child %q was replaced", f.name, c.name)
			}
			return true, l.setItems(ms)
		}
		direct := 0
		for _, m := range ms {
			if n.childHolding(m, false) != nil {
				direct++
			}
		}
		switch {
		case len(ms) == 0 || direct == len(ms):
			return true, false // empty, or every element registered by Add (as in Sequential)
		case direct > 0:
			n.fail("field %s holds %d modules registered as children and %d that are not: register all of them with Add, or none (the field then registers an nn.ModuleList %q)",
				f.name, direct, len(ms)-direct, f.info.name)
		}
		return false, false
	case fkModuleMap:
		for _, m := range moduleElems(f) {
			if n.childHolding(m, false) == nil {
				n.fail("field %s is a map of modules that are not registered: use nn.ModuleDict (or tag the field `nn:\"-\"`)", f.name)
			}
		}
		return true, false
	}
	return true, false
}

func (n *Node) syncBoundTensor(f structField, t *bridge.Tensor) (done, changed bool) {
	if s, param := n.slotBoundTo(f.key); s != nil {
		if s.t != t {
			if param {
				n.checkParamValue(f, t)
			}
			s.t = t
			return true, true
		}
		return true, false
	}
	if t == nil || t.IsFreed() {
		return true, false
	}
	if s, _ := n.slotHolding(t); s != nil {
		s.field = f.key
		return true, false
	}
	return false, false
}

// checkParamValue refuses, as PyTorch does, a tensor that cannot be a parameter, and makes one
// that can require grad, as Param does.
func (n *Node) checkParamValue(f structField, t *bridge.Tensor) {
	if t == nil {
		return
	}
	if t.IsFreed() {
		n.fail("field %s holds a freed tensor where a parameter was", f.name)
	}
	if !aten.IsLeaf(t) {
		n.fail("field %s: a parameter must be a leaf tensor (a weight, not the result of an op): assign a leaf, or Detach() it", f.name)
	}
	if !t.RequiresGrad() {
		t.SetRequiresGrad(true)
	}
}

// syncNew binds a field by name to an unbound registration, or registers what it holds.
func (n *Node) syncNew(f structField) bool {
	name := f.info.name
	if t, ok := fieldTensor(f); ok {
		if s, param := n.slotNamed(name); s != nil && s.field == "" {
			if param {
				n.checkParamValue(f, t)
			}
			s.t, s.field = t, f.key
			return true
		}
		switch {
		case f.info.buffer:
			n.checkFieldName(f)
			n.buffers = append(n.buffers, tensorSlot{name: name, t: t, field: f.key})
		case f.info.param || t.RequiresGrad() && aten.IsLeaf(t):
			n.checkFieldName(f)
			n.checkParamValue(f, t)
			n.params = append(n.params, tensorSlot{name: name, t: t, field: f.key})
		default:
			return false // plain state
		}
		return true
	}
	var m AnyModule
	if f.info.kind == fkModuleSlice {
		l := &ModuleList{}
		l.kind = "ModuleList"
		l.setItems(moduleElems(f))
		m = l
	} else {
		m = n.moduleOf(f)
	}
	if m == nil {
		return false
	}
	n.checkNotAncestor(m.node(), "field "+f.name)
	if c := n.childNamed(name); c != nil && c.field == "" {
		if f.info.kind == fkModuleSlice {
			if l, ok := c.m.(*ModuleList); ok {
				c.field = f.key
				return l.setItems(moduleElems(f))
			}
		}
		n.setChild(c, m)
		c.field = f.key
		return true
	}
	n.checkFieldName(f)
	n.children = append(n.children, child{name: name, m: m, field: f.key})
	return true
}

func (n *Node) checkFieldName(f structField) {
	name := f.info.name
	if name == "" || strings.Contains(name, ".") {
		n.fail("field %s: bad name %q", f.name, name)
	}
	if c := n.childNamed(name); c != nil {
		n.fail("field %s would register %q, which is already a child of this module: name it with a tag `nn:\"other_name\"`, or `nn:\"-\"` to leave it out", f.name, name)
	}
	if s, param := n.slotNamed(name); s != nil {
		what := "buffer"
		if param {
			what = "parameter"
		}
		n.fail("field %s would register %q, which is already a %s of this module: name it with a tag `nn:\"other_name\"`, or `nn:\"-\"` to leave it out", f.name, name, what)
	}
}

// setChild replaces what a child registration holds, releasing the module it held (reparent
// adopts it again if it is still a child).
func (n *Node) setChild(c *child, m AnyModule) {
	if c.m != nil {
		if on := c.m.node(); on.parent == n {
			on.parent, on.name = nil, ""
		}
	}
	c.m = m
}

// reparent points each child's parent and name at its first registration under n (a module
// registered elsewhere first keeps that path).
func (n *Node) reparent() {
	mine := map[*Node]bool{}
	for _, c := range n.children {
		if c.m == nil {
			continue
		}
		cn := c.m.node()
		if mine[cn] {
			continue
		}
		mine[cn] = true
		if cn.parent == nil || cn.parent == n {
			cn.parent, cn.name = n, c.name
		}
	}
}
