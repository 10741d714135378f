// Package jit trains TorchScript modules from Go: a model scripted or traced in Python and saved
// with torch.jit.save loads (Load) as a *Module that is an nn.Module like any Go one —
// parameters and buffers under PyTorch's names, named submodules, Train/Eval, nn.To, state dicts,
// checkpoints, forward hooks — so Go optimizers, schedulers, package trainer and every hotcb
// callback work on it. Forward maps a tensor to a tensor; Call runs any method with any
// arguments; Save writes it back as TorchScript with its trained weights, for Python's
// torch.jit.load.
//
//	m, err := jit.Load("resnet.pt", bridge.CPU)
//	opt := optim.SGD(nn.Parameters(m), optim.SGDOptions{LR: 0.1})
//	loss := bridge.CrossEntropy(m.Forward(x), y) // backward, opt.Step() ...
//	err = m.Save("resnet-trained.pt")
//
// # How it works, and its limits
//
// The model runs in libtorch's TorchScript interpreter, exactly as in Python; Go holds a mirror
// of its module tree whose parameters and buffers are the module's own tensors (not copies), so
// gradients, optimizer steps, nn.To and nn.LoadStateDict act on the module itself. Training mode
// and the set of hooked submodules are handed to libtorch before each call.
//
// Forward hooks on submodules (what feature maps use) work on scripted and traced modules alike:
// at load, each submodule type's forward graph gets two recording ops, at its start and its end,
// which cost an atomic load while nothing is hooked, and are taken out when the module is saved.
// The limits:
//   - Hooks of submodules run after the root's call returns (in the order their forwards returned,
//     as in PyTorch),
//     not during it: they see every input and output, but cannot change them.
//   - Only what runs as a submodule's forward is seen: a functional call (F.relu) is no module,
//     and a module whose other methods are called directly fires nothing.
//   - A module that runs more than 4096 forwards in one call records the first 4096.
//   - Assigning a new tensor to a mirror's parameter does not reach the module: change values in
//     place (nn.LoadStateDict, nn.To and the optimizers do).
//   - A Module is used by one goroutine at a time, as a training loop uses its model (callbacks
//     run on that goroutine too).
package jit

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/torchfile"
)

// Module is a loaded TorchScript module: the root of its module tree.
type Module struct {
	nn.Node
	sm      *bridge.ScriptModule `nn:"-"`
	path    string
	subs    []*Submodule `nn:"-"` // by module number; subs[0] is nil (the root is m)
	methods [][]string
	modes   []bool // each module's training flag as libtorch has it
	watched []int
	scratch []int
}

// Submodule is a module inside a TorchScript Module ("layer1.0.conv1"). Its Kind is the last
// part of its TorchScript type ("Conv2d"), so what finds layers by kind finds it.
type Submodule struct {
	nn.Node
	root *Module `nn:"-"`
	idx  int
	typ  string
}

// Load reads a torch.jit.save file (a scripted or traced module) onto dev. A file that is not
// TorchScript — a state dict, a pickled module, anything else — is an error that says what it
// is and what to use instead.
func Load(path string, dev bridge.Device) (*Module, error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	sm, err := bridge.LoadScript(path, dev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tree, err := sm.Tree()
	if err != nil {
		sm.Free()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m := &Module{sm: sm, path: path}
	if err := bridge.Try(func() { m.build(tree) }); err != nil {
		sm.Free()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// build makes the Go mirror of the module tree.
func (m *Module) build(tree []bridge.ScriptNode) {
	n := len(tree)
	m.subs = make([]*Submodule, n)
	m.methods = make([][]string, n)
	m.modes = make([]bool, n)
	at := map[string]int{}
	m.SetKind(kindOf(tree[0].Type))
	for i, t := range tree {
		at[t.Path] = i
		m.methods[i] = t.Methods
		m.modes[i] = t.Training
		if i > 0 {
			s := &Submodule{root: m, idx: i, typ: t.Type}
			s.SetKind(kindOf(t.Type))
			parent, name := "", t.Path
			if k := strings.LastIndexByte(t.Path, '.'); k >= 0 {
				parent, name = t.Path[:k], t.Path[k+1:]
			}
			p, ok := at[parent]
			if !ok {
				panic(&bridge.Error{Op: "jit load", Msg: fmt.Sprintf("module %q comes before its parent", t.Path)})
			}
			m.node(p).Add(name, s)
			m.subs[i] = s
		}
		for _, p := range t.Params {
			frozen := !p.Tensor.RequiresGrad()
			m.node(i).Param(p.Name, p.Tensor)
			if frozen { // as saved: Param makes it trainable
				p.Tensor.SetRequiresGrad(false)
			}
		}
		for _, b := range t.Buffers {
			m.node(i).Buffer(b.Name, b.Tensor)
		}
	}
	// Each module's own flag: in tree order, a child's after its parent's.
	for i, on := range m.modes {
		var sub nn.AnyModule = m
		if i > 0 {
			sub = m.subs[i]
		}
		nn.Train(sub, on)
	}
}

// node is module number i's node: the root's own, or a submodule's.
func (m *Module) node(i int) *nn.Node {
	if i == 0 {
		return &m.Node
	}
	return &m.subs[i].Node
}

// kindOf is the layer type of a TorchScript type: its last part ("Conv2d" of
// "__torch__.torch.nn.modules.conv.___torch_mangle_3.Conv2d").
func kindOf(typ string) string {
	if k := strings.LastIndexByte(typ, '.'); k >= 0 {
		return typ[k+1:]
	}
	return typ
}

// checkFile says what path holds when it is not TorchScript.
func checkFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not a TorchScript file", path)
	}
	const save = "in Python, save the model with torch.jit.save(torch.jit.script(model), path) (or torch.jit.trace(model, example_input))"
	switch k, what := torchfile.Describe(f, st.Size()); k {
	case torchfile.TorchScript:
		return nil
	case torchfile.TorchSave:
		return fmt.Errorf("%s is %s, not a TorchScript module: load a state dict into a Go model with bridge.LoadNamed and nn.LoadStateDict, or %s", path, what, save)
	default:
		return fmt.Errorf("%s is %s, not a TorchScript module: %s", path, what, save)
	}
}

// Path is the file the module was loaded from.
func (m *Module) Path() string { return m.path }

// Methods lists the root's methods ("forward", and any other @torch.jit.export-ed ones).
func (m *Module) Methods() []string { return slices.Clone(m.methods[0]) }

// Forward runs the module's forward on x and returns its output, which must be one tensor (Call
// returns any output). Errors panic with a *bridge.Error, as every nn layer's do.
func (m *Module) Forward(x *bridge.Tensor) *bridge.Tensor { return m.forward(0, x) }

// Call runs a method of the module — "forward" or any other exported one — with Go arguments
// (see bridge.Value.AppendGo: tensors, numbers, strings, bridge.Tuple, slices, maps) and returns
// its result as Go values (see bridge.Value.Go): a tensor, bridge.Tuple{...}, []any,
// map[string]any ...
func (m *Module) Call(method string, args ...any) (any, error) { return m.call(0, method, args) }

// Save writes the module to path as TorchScript (atomically) with its current parameters,
// buffers and training flags, as it was scripted: Python's torch.jit.load reads it.
func (m *Module) Save(path string) error {
	if err := m.sync(); err != nil {
		return err
	}
	return m.sm.Save(path)
}

// Free releases the libtorch module now (the finalizer would, later). The Module is unusable
// after.
func (m *Module) Free() { m.sm.Free() }

// Forward runs the submodule's forward on x (it must return one tensor).
func (s *Submodule) Forward(x *bridge.Tensor) *bridge.Tensor { return s.root.forward(s.idx, x) }

// Call runs a method of the submodule (see Module.Call).
func (s *Submodule) Call(method string, args ...any) (any, error) {
	return s.root.call(s.idx, method, args)
}

// Type is the submodule's TorchScript type ("__torch__.torch.nn.modules.conv.Conv2d").
func (s *Submodule) Type() string { return s.typ }

// Methods lists the submodule's methods.
func (s *Submodule) Methods() []string { return slices.Clone(s.root.methods[s.idx]) }

func (m *Module) label(idx int) string {
	if idx == 0 {
		return "jit.Module(" + m.path + ")"
	}
	return "jit.Module(" + m.path + ")." + m.subs[idx].Path()
}

func (m *Module) forward(idx int, x *bridge.Tensor) *bridge.Tensor {
	out, err := m.call(idx, "forward", []any{x})
	if err != nil {
		panic(asBridgeError(err))
	}
	y, ok := out.(*bridge.Tensor)
	if !ok {
		for _, t := range bridge.Tensors(out) {
			t.Free()
		}
		panic(&bridge.Error{Op: m.label(idx), Msg: fmt.Sprintf("forward returned %s, not one tensor: use Call(\"forward\", x) to get all of it", describeGo(out))})
	}
	return y
}

func asBridgeError(err error) *bridge.Error {
	var be *bridge.Error
	if errors.As(err, &be) {
		return be
	}
	return &bridge.Error{Op: "jit", Msg: err.Error(), Err: err}
}

// describeGo names the shape of a Go value from Value.Go for messages.
func describeGo(x any) string {
	switch x := x.(type) {
	case nil:
		return "None"
	case bridge.Tuple:
		return fmt.Sprintf("a tuple of %d", len(x))
	case []any:
		return fmt.Sprintf("a list of %d", len(x))
	case map[string]any, map[int64]any:
		return "a dict"
	}
	return fmt.Sprintf("a %T", x)
}

func (m *Module) call(idx int, method string, args []any) (any, error) {
	var v bridge.Value
	v.Tuple(len(args))
	for i, a := range args {
		if err := v.AppendGoAs(a, argName(i)); err != nil {
			return nil, &bridge.Error{Op: m.label(idx) + "." + method, Msg: err.Error()}
		}
	}
	if err := m.sync(); err != nil {
		return nil, err
	}
	out, err := m.sm.Call(idx, method, &v)
	if err != nil {
		msg := err.Error()
		var be *bridge.Error
		if errors.As(err, &be) {
			msg = be.Msg
		}
		return nil, &bridge.Error{Op: m.label(idx) + "." + method, Msg: msg, Err: err}
	}
	x, err := out.Go()
	fired := false // whether the taps ran idx's own hooks (a submodule's forward has taps)
	if err == nil && len(m.watched) > 0 {
		fired, err = m.fire(idx)
	}
	if err != nil {
		for _, t := range out.Tensors {
			t.Free()
		}
		return nil, &bridge.Error{Op: m.label(idx) + "." + method, Msg: err.Error(), Err: err}
	}
	if method == "forward" && !fired && m.node(idx).Hooked() {
		m.node(idx).FireAll(bridge.Tensors(bridge.Tuple(args)), bridge.Tensors(x)...)
	}
	return x, nil
}

// argNames name the first arguments in AppendGoAs's errors without formatting on every call.
var argNames = [...]string{"argument 1", "argument 2", "argument 3", "argument 4",
	"argument 5", "argument 6", "argument 7", "argument 8"}

// argName is "argument i+1".
func argName(i int) string {
	if i < len(argNames) {
		return argNames[i]
	}
	return fmt.Sprintf("argument %d", i+1)
}

// sync hands libtorch the training flags that changed and the hooked submodules.
func (m *Module) sync() error {
	for i := range m.subs {
		n := m.node(i)
		if on := n.Training(); on != m.modes[i] {
			if err := m.sm.SetTraining(i, on); err != nil {
				return err
			}
			m.modes[i] = on
		}
	}
	w := m.scratch[:0]
	for i := 1; i < len(m.subs); i++ {
		if m.subs[i].Hooked() {
			w = append(w, i)
		}
	}
	m.scratch = w
	if !slices.Equal(w, m.watched) {
		if err := m.sm.Watch(w); err != nil {
			return err
		}
		m.watched = slices.Clone(w)
	}
	return nil
}

// fire runs the hooks of the submodules the last call recorded, then frees what was recorded. It
// reports whether module number self was among them.
func (m *Module) fire(self int) (bool, error) {
	taps, _, err := m.sm.Taps()
	if err != nil {
		return false, err
	}
	fired := false
	for _, t := range taps {
		if t.Module > 0 && t.Module < len(m.subs) {
			m.subs[t.Module].FireAll(t.Ins, t.Outs...)
			fired = fired || t.Module == self
		}
	}
	for _, t := range taps {
		for _, x := range append(t.Ins, t.Outs...) {
			x.Free()
		}
	}
	return fired, nil
}
