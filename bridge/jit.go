package bridge

// #include <stdlib.h>
// #include "hotcb_torch.h"
import "C"

import (
	"runtime"
	"strings"
	"sync"
	"unsafe"
)

// ScriptModule is a TorchScript module that libtorch loaded (torch::jit::load): the handle that
// package bridge/jit builds its nn.Module on. Use that package; this is its C side. Its modules
// are numbered depth first, the root 0, as Tree lists them.
type ScriptModule struct {
	mu      sync.Mutex // guards h
	h       C.hc_module
	cleanup runtime.Cleanup
}

// ScriptNode is one module of a ScriptModule's tree.
type ScriptNode struct {
	Path     string // dotted name from the root ("" for the root)
	Type     string // TorchScript type: "__torch__.torch.nn.modules.conv.Conv2d"
	Training bool
	Params   []Named // its own parameters, shared with the module (not copies)
	Buffers  []Named // its own buffers
	Methods  []string
}

// ScriptTap is one forward of a watched submodule: the tensors among its inputs and its output.
type ScriptTap struct {
	Module    int
	Ins, Outs []*Tensor
}

// LoadScript loads a torch.jit.save file onto dev. Package jit checks what the file is first,
// for a clearer error than libtorch's.
func LoadScript(path string, dev Device) (*ScriptModule, error) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	var h C.hc_module
	if err := checkErr("jit load", C.hc_jit_load(cp, C.int(dev.code()), &h)); err != nil {
		return nil, err
	}
	m := &ScriptModule{h: h}
	m.cleanup = runtime.AddCleanup(m, func(h C.hc_module) { C.hc_jit_free(h) }, h)
	return m, nil
}

func (m *ScriptModule) handle(op string) (C.hc_module, error) {
	if m == nil || m.h == nil {
		return nil, &Error{Op: op, Msg: "the TorchScript module is freed"}
	}
	return m.h, nil
}

// Free releases the module now (its parameters live on while tensors refer to them).
func (m *ScriptModule) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		m.cleanup.Stop()
		C.hc_jit_free(m.h)
		m.h = nil
	}
}

// takeValue copies a value the shim handed back and frees its arrays; the tensors become the
// Value's.
func takeValue(o *C.hc_value_out) *Value {
	defer func() {
		C.hc_free(unsafe.Pointer(o.codes))
		C.hc_free(unsafe.Pointer(o.f))
		C.hc_free(unsafe.Pointer(o.s))
		C.hc_free(unsafe.Pointer(o.t))
	}()
	v := &Value{}
	if o.nc > 0 {
		v.Codes = append([]int64(nil), unsafe.Slice((*int64)(unsafe.Pointer(o.codes)), int(o.nc))...)
	}
	if o.nf > 0 {
		v.Floats = append([]float64(nil), unsafe.Slice((*float64)(unsafe.Pointer(o.f)), int(o.nf))...)
	}
	p := o.s
	for i := 0; i < int(o.ns); i++ {
		s := C.GoString(p)
		v.Strings = append(v.Strings, s)
		p = (*C.char)(unsafe.Add(unsafe.Pointer(p), len(s)+1))
	}
	if o.nt > 0 {
		hs := unsafe.Slice(o.t, int(o.nt))
		v.Tensors = make([]*Tensor, len(hs))
		for i, h := range hs {
			v.Tensors[i] = wrap(h)
		}
	}
	return v
}

// Tree lists the modules, the root first, then depth first.
func (m *ScriptModule) Tree() ([]ScriptNode, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle("jit tree")
	if err != nil {
		return nil, err
	}
	var o C.hc_value_out
	if err := checkErr("jit tree", C.hc_jit_tree(h, &o)); err != nil {
		return nil, err
	}
	x, err := takeValue(&o).Go()
	if err != nil {
		return nil, &Error{Op: "jit tree", Msg: err.Error()}
	}
	var out []ScriptNode
	for _, e := range x.([]any) {
		t := e.(Tuple)
		n := ScriptNode{Path: t[0].(string), Type: t[1].(string), Training: t[2].(bool)}
		for _, s := range t[3].([]any) {
			st := s.(Tuple)
			item := Named{Name: st[0].(string), Tensor: st[2].(*Tensor)}
			if st[1].(bool) {
				n.Buffers = append(n.Buffers, item)
			} else {
				n.Params = append(n.Params, item)
			}
		}
		for _, s := range t[4].([]any) {
			n.Methods = append(n.Methods, s.(string))
		}
		out = append(out, n)
	}
	return out, nil
}

// Call runs method of module number module with args, a Value holding a tuple of the arguments,
// and returns what it returned.
func (m *ScriptModule) Call(module int, method string, args *Value) (*Value, error) {
	op := "jit " + method
	if strings.IndexByte(method, 0) >= 0 {
		return nil, &Error{Op: op, Msg: "method name contains a NUL byte"}
	}
	st, err := streamsOf(op, args)
	if err != nil {
		return nil, err
	}
	// The method name goes to C as NUL-terminated Go memory too (no C allocation to free).
	cm := append(append(make([]byte, 0, len(method)+1), method...), 0)
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle(op)
	if err != nil {
		return nil, err
	}
	var o C.hc_value_out
	e := C.hc_jit_call(h, C.int64_t(module), (*C.char)(unsafe.Pointer(&cm[0])),
		st.codesP(), C.int64_t(len(args.Codes)), st.floatsP(), C.int64_t(len(args.Floats)),
		st.strsP(), C.int64_t(len(args.Strings)), st.tensorsP(), C.int64_t(len(args.Tensors)), &o)
	runtime.KeepAlive(args.Tensors)
	if err := checkErr(op, e); err != nil {
		return nil, err
	}
	return takeValue(&o), nil
}

// SetTraining sets one module's training flag (not its children's).
func (m *ScriptModule) SetTraining(module int, on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle("jit train")
	if err != nil {
		return err
	}
	return checkErr("jit train", C.hc_jit_set_training(h, C.int64_t(module), C.int(b2i(on))))
}

// Watch sets the submodules (not the root) whose forwards the next calls record for Taps.
func (m *ScriptModule) Watch(modules []int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle("jit watch")
	if err != nil {
		return err
	}
	ids := make([]int64, len(modules)+1)
	for i, x := range modules {
		ids[i] = int64(x)
	}
	return checkErr("jit watch", C.hc_jit_watch(h, (*C.int64_t)(unsafe.Pointer(&ids[0])), C.int64_t(len(modules))))
}

// Taps returns what the last Call recorded of the watched submodules, in the order their forwards
// returned, and how
// many forwards were over the limit (4096 a call) and not recorded.
func (m *ScriptModule) Taps() ([]ScriptTap, int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle("jit taps")
	if err != nil {
		return nil, 0, err
	}
	var o C.hc_value_out
	var dropped C.int64_t
	if err := checkErr("jit taps", C.hc_jit_taps(h, &o, &dropped)); err != nil {
		return nil, 0, err
	}
	x, err := takeValue(&o).Go()
	if err != nil {
		return nil, 0, &Error{Op: "jit taps", Msg: err.Error()}
	}
	var out []ScriptTap
	for _, e := range x.([]any) {
		t := e.(Tuple)
		out = append(out, ScriptTap{Module: int(t[0].(int64)), Ins: Tensors(t[1]), Outs: Tensors(t[2])})
	}
	return out, int(dropped), nil
}

// Encode returns the module in torch.jit.save's format, with its current parameters and buffers.
func (m *ScriptModule) Encode() ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle("jit save")
	if err != nil {
		return nil, err
	}
	var buf *C.char
	var n C.int64_t
	if err := checkErr("jit save", C.hc_jit_save(h, &buf, &n)); err != nil {
		return nil, err
	}
	defer C.hc_free(unsafe.Pointer(buf))
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), nil
}

// Save writes the module to path in torch.jit.save's format (atomically), so that Python's
// torch.jit.load gets it with its current weights.
func (m *ScriptModule) Save(path string) error {
	b, err := m.Encode()
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}
