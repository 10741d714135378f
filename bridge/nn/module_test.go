package nn_test

import (
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// scaler is a custom module held by value in a struct field.
type scaler struct {
	nn.Node
	W *bridge.Tensor // registered by being a trainable leaf
}

func (s *scaler) Forward(x *bridge.Tensor) *bridge.Tensor { return s.Fire(x, aten.Mul(x, s.W)) }

// fieldNet registers nothing with Add or Param: every child and parameter is found in its fields.
// pyFieldNet below is the same network in PyTorch.
type fieldNet struct {
	nn.Node
	Gain    *bridge.Tensor // a trainable leaf: a parameter
	Enc     *nn.Linear
	dec     *nn.Linear // unexported fields count too
	Scale   scaler     // a module held by value
	Blocks  []*nn.Linear
	Act     nn.Module      // an interface holding a module
	Aux     *nn.Linear     `nn:"aux_head"`
	Cached  *nn.Linear     `nn:"-"` // left out
	Running *bridge.Tensor `nn:",buffer"`
	mask    *bridge.Tensor // plain state
	Config  struct{ Width int64 }
	width   int64
}

func newFieldNet() *fieldNet {
	n := &fieldNet{Enc: nn.NewLinear(4, 8), dec: nn.NewLinear(8, 4), Aux: nn.NewLinear(4, 2),
		Blocks: []*nn.Linear{nn.NewLinear(4, 4), nn.NewLinear(4, 4)}, Act: nn.NewLinear(4, 4),
		mask: bridge.Ones(bridge.Shape{4}), width: 4}
	n.Gain = bridge.Ones(bridge.Shape{4}).SetRequiresGrad(true)
	n.Scale.W = bridge.Full(bridge.Shape{4}, 0.5).SetRequiresGrad(true)
	n.Running = bridge.Zeros(bridge.Shape{4})
	n.Cached = n.Aux
	return n
}

func (n *fieldNet) Forward(x *bridge.Tensor) *bridge.Tensor {
	h := n.dec.Forward(n.Enc.Forward(aten.Mul(x, n.Gain)))
	h = n.Scale.Forward(h)
	for _, b := range n.Blocks {
		h = b.Forward(h)
	}
	return n.Fire(x, n.Aux.Forward(n.Act.Forward(aten.Mul(h, n.mask))))
}

const pyFieldNet = `
class FieldNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(4))
        self.enc = nn.Linear(4, 8)
        self.dec = nn.Linear(8, 4)
        self.scale = Scaler()
        self.blocks = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
        self.act = nn.Linear(4, 4)
        self.aux_head = nn.Linear(4, 2)
        self.register_buffer("running", torch.zeros(4))
        self.mask = torch.ones(4)
    def forward(self, x):
        h = self.scale(self.dec(self.enc(x * self.gain)))
        for b in self.blocks:
            h = b(h)
        return self.aux_head(self.act(h * self.mask))
class Scaler(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.full((4,), 0.5))
    def forward(self, x):
        return x * self.w
`

// A child or parameter kept in a struct field and never registered used to be silently left out
// of Parameters and the state dict (it never trained). Now fields register themselves, with
// PyTorch's names and order.
func TestStructFieldsRegisterThemselves(t *testing.T) {
	n := newFieldNet()
	want := []string{"gain", "enc.weight", "enc.bias", "dec.weight", "dec.bias", "scale.w",
		"blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias",
		"act.weight", "act.bias", "aux_head.weight", "aux_head.bias"}
	require.Equal(t, want, names(nn.NamedParameters(n)))
	sd := names(nn.StateDict(n))
	require.Equal(t, append([]string{"gain", "running"}, want[1:]...), sd)
	require.Len(t, nn.Parameters(n), len(want))

	var mods []string
	for _, m := range nn.NamedModules(n) {
		mods = append(mods, m.Name+":"+nn.Kind(m.Module))
	}
	require.Equal(t, []string{":Module", "enc:Linear", "dec:Linear", "scale:Module", "blocks:ModuleList",
		"blocks.0:Linear", "blocks.1:Linear", "act:Linear", "aux_head:Linear"}, mods)
	require.Equal(t, "blocks.1", n.Blocks[1].Path())
	require.Equal(t, "dec", n.dec.Path())

	// They train: every parameter gets a gradient.
	n.Forward(bridge.Randn(bridge.Shape{3, 4})).Sum().Backward()
	for _, p := range nn.NamedParameters(n) {
		require.NotNil(t, p.Tensor.Grad(), p.Name)
	}
	// train/eval and To reach them.
	nn.Eval(n)
	require.False(t, n.Blocks[0].Training())
	require.False(t, n.Scale.Training())
	nn.To(n, bridge.Float64)
	require.Equal(t, bridge.Float64, n.Scale.W.DType())
	require.Equal(t, bridge.Float64, n.Running.DType())
	require.Equal(t, bridge.Float32, n.mask.DType(), "plain state is not the module's")
}

// Assigning a field after the model was walked replaces the registration, as assigning a PyTorch
// attribute does: a new head (fine-tuning), a grown slice, a dropped bias.
func TestFieldAssignmentReplacesRegistration(t *testing.T) {
	n := newFieldNet()
	require.Len(t, nn.Parameters(n), 14)
	old := n.Aux
	n.Aux = nn.NewLinear(4, 7)
	n.Blocks = append(n.Blocks, nn.NewLinear(4, 4))
	n.Enc.Bias = nil
	ps := nn.NamedParameters(n)
	require.Equal(t, []string{"gain", "enc.weight", "dec.weight", "dec.bias", "scale.w",
		"blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "blocks.2.weight", "blocks.2.bias",
		"act.weight", "act.bias", "aux_head.weight", "aux_head.bias"}, names(ps))
	require.Same(t, n.Aux.Weight, ps[len(ps)-2].Tensor)
	for _, p := range ps {
		require.NotSame(t, old.Weight, p.Tensor)
	}
	require.Equal(t, "aux_head", n.Aux.Path())
	require.Equal(t, "", old.Path(), "the replaced head left the tree")
	m, ok := nn.Find(n, "blocks.2")
	require.True(t, ok)
	require.Same(t, n.Blocks[2], m)

	// Add-registered children stored in fields follow their fields too.
	net := NewNet()
	nn.Parameters(net)
	net.Head = nn.NewSequential(nn.NewFlatten(1, -1), nn.NewLinear(64, 3))
	require.Equal(t, "head.1.weight", names(nn.NamedParameters(net))[6])
	require.Equal(t, bridge.Shape{3, 64}, nn.NamedParameters(net)[6].Tensor.Shape())
}

// Embedded modules: one embedded by value supplies the node (its fields are the module's own);
// one embedded next to the module's own Node is a child named after its type.
type base struct {
	nn.Node
	W *bridge.Tensor
}

type derived struct {
	base
	Extra *bridge.Tensor
}

type withEmbeddedChild struct {
	nn.Node
	*nn.Linear
	nn.Identity // a value: a child too
}

// logged wraps any module, embedding it: it is that module (its node), with one more field.
type logged struct {
	nn.Module
	Calls *bridge.Tensor `nn:"calls,buffer"`
}

func TestEmbeddedModules(t *testing.T) {
	d := &derived{Extra: bridge.Ones(bridge.Shape{1}).SetRequiresGrad(true)}
	d.W = d.Param("weight", bridge.Ones(bridge.Shape{2}))
	require.Equal(t, []string{"weight", "extra"}, names(nn.NamedParameters(d)))
	d.W = d.Extra // the promoted field is bound like the others
	require.Equal(t, []string{"weight"}, names(nn.NamedParameters(d)))
	require.Equal(t, []string{"weight", "extra"}, names(nn.StateDict(d)))
	e := &withEmbeddedChild{Linear: nn.NewLinear(2, 3)}
	require.Equal(t, []string{"linear.weight", "linear.bias"}, names(nn.NamedParameters(e)))
	require.Equal(t, "linear identity", strings.Join(childNames(e), " "))
	l := &logged{Module: &tiedLM{Tok: nn.NewEmbedding(3, 2), Head: nn.NewLinear(2, 3)}, Calls: bridge.Zeros(bridge.Shape{1})}
	require.Equal(t, []string{"calls", "tok.weight", "head.weight", "head.bias"}, names(nn.StateDict(l)),
		"the wrapped module's fields are found through the embedded interface")
	require.Equal(t, []string{"calls", "tok.weight", "head.weight", "head.bias"}, names(nn.StateDict(l.Module)),
		"and walking the module itself finds the same")
}

type tiedLM struct {
	nn.Node
	Tok  *nn.Embedding
	Head *nn.Linear
}

func newTiedLM(tieFirst bool) *tiedLM {
	m := &tiedLM{Tok: nn.NewEmbedding(10, 6), Head: nn.NewLinear(6, 10)}
	if !tieFirst {
		nn.Parameters(m) // walked before the tie
	}
	m.Head.Weight = m.Tok.Weight
	return m
}

func (m *tiedLM) Forward(idx *bridge.Tensor) *bridge.Tensor {
	return m.Fire(idx, m.Head.Forward(m.Tok.Forward(idx)))
}

const pyTiedLM = `
class TiedLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(10, 6)
        self.head = nn.Linear(6, 10)
        self.head.weight = self.tok.weight
    def forward(self, idx):
        return self.head(self.tok(idx))
`

// Weight tying (head.weight = tok.weight): one parameter, whose gradient sums both uses; the state
// dict lists it under both names, as PyTorch's does, and loads from PyTorch's. Today's code kept
// the untied tensor registered under head.weight (trained, saved, but unused by Forward).
func TestTiedWeightsMatchPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	for _, tieFirst := range []bool{true, false} {
		m := newTiedLM(tieFirst)
		require.Equal(t, []string{"tok.weight", "head.bias"}, names(nn.NamedParameters(m)), "tied weight listed once")
		sd := nn.StateDict(m)
		require.Equal(t, []string{"tok.weight", "head.weight", "head.bias"}, names(sd))
		require.Equal(t, sd[0].Tensor.Float32s(), sd[1].Tensor.Float32s())
	}
	bridge.ManualSeed(1)
	m := newTiedLM(false)
	idx := bridge.FromSlice([]int64{1, 4, 4, 9, 0, 3}, 2, 3)
	items := append(nn.StateDict(m), bridge.Named{Name: "idx", Tensor: idx})
	require.NoError(t, bridge.SaveNamed(filepath.Join(dir, "go.pt"), items))
	m.Forward(idx).Square().Sum().Backward()

	torchpy.Run(t, `import sys, torch, torch.nn as nn`+pyTiedLM+`
d = torch.load(sys.argv[1])
idx = d.pop("idx")
m = TiedLM()
assert list(m.state_dict().keys()) == ["tok.weight", "head.weight", "head.bias"], list(m.state_dict().keys())
m.load_state_dict(d)
m(idx).square().sum().backward()
res = {"grad." + k: p.grad for k, p in m.named_parameters()}
torch.manual_seed(5)
res.update({"py." + k: v for k, v in TiedLM().state_dict().items()})
torch.save(res, sys.argv[2])
`, filepath.Join(dir, "go.pt"), filepath.Join(dir, "ref.pt"))
	ref, err := bridge.LoadMap(filepath.Join(dir, "ref.pt"))
	require.NoError(t, err)
	require.Len(t, ref, 2+3)
	require.InDeltaSlice(t, ref["grad.tok.weight"].Float64s(), m.Tok.Weight.Grad().Float64s(), 1e-5)
	require.InDeltaSlice(t, ref["grad.head.bias"].Float64s(), m.Head.Bias.Grad().Float64s(), 1e-5)

	// PyTorch's state dict of a tied model loads strictly and stays tied.
	var py []bridge.Named
	for _, k := range []string{"tok.weight", "head.weight", "head.bias"} {
		py = append(py, bridge.Named{Name: k, Tensor: ref["py."+k]})
	}
	fresh := newTiedLM(true)
	require.NoError(t, nn.LoadStateDict(fresh, py, true))
	require.Same(t, fresh.Tok.Weight, fresh.Head.Weight)
	require.Equal(t, ref["py.tok.weight"].Float32s(), fresh.Head.Weight.Float32s())
}

// The same tensor registered twice with Param is one parameter (PyTorch dedupes by identity).
func TestParametersDeduplicateSharedTensors(t *testing.T) {
	shared := nn.NewLinear(3, 3)
	seq := nn.NewSequential(shared, nn.NewReLU(), shared)
	require.Equal(t, []string{"0.weight", "0.bias"}, names(nn.NamedParameters(seq)))
	require.Equal(t, []string{"0.weight", "0.bias", "2.weight", "2.bias"}, names(nn.StateDict(seq)))
	require.Len(t, nn.NamedModules(seq), 3, "a module registered twice is listed once")
	m, ok := nn.Find(seq, "2")
	require.True(t, ok)
	require.Same(t, shared, m)

	c := &customConv{}
	w := bridge.Ones(bridge.Shape{2})
	c.Param("a", w)
	c.Param("b", w)
	require.Equal(t, []string{"a"}, names(nn.NamedParameters(c)))
	require.Equal(t, []string{"a", "b"}, names(nn.StateDict(c)))
	nn.To(c, bridge.Float64)
	require.Equal(t, bridge.Float64, w.DType())
}

// maskedMean is a module with two inputs and two outputs: it is an nn.AnyModule, not an nn.Module,
// and its Forward has the signature it needs.
type maskedMean struct {
	nn.Node
	Proj *nn.Linear
}

// Forward averages the projected rows of x [B, T, C] where mask [B, T] is 1; it returns the mean
// [B, C] and the projection [B, T, C].
func (m *maskedMean) Forward(x, mask *bridge.Tensor) (mean, h *bridge.Tensor) {
	h = m.Proj.Forward(x)
	w := aten.Unsqueeze(mask, -1)
	mean = aten.Div(aten.SumDimIntList(aten.Mul(h, w), []int64{1}, false, nil), aten.SumDimIntList(w, []int64{1}, false, nil))
	return m.FireAll([]*bridge.Tensor{x, mask}, mean, h), h
}

type maskedModel struct {
	nn.Node
	Pool *maskedMean
	Head *nn.Linear
}

// Forward takes [B, T, C+1]: the last channel is the mask.
func (m *maskedModel) Forward(xm *bridge.Tensor) *bridge.Tensor {
	c := xm.Size(2) - 1
	mean, _ := m.Pool.Forward(xm.Narrow(2, 0, c), aten.Select(xm, 2, c))
	return m.Fire(xm, m.Head.Forward(mean))
}

func TestMultiInputForwardAndHooks(t *testing.T) {
	m := &maskedModel{Pool: &maskedMean{Proj: nn.NewLinear(3, 3)}, Head: nn.NewLinear(3, 2)}
	x := bridge.Randn(bridge.Shape{2, 4, 3})
	mask := bridge.FromSlice([]float32{1, 1, 0, 0, 1, 1, 1, 0}, 2, 4)
	xm := aten.Cat([]*bridge.Tensor{x, aten.Unsqueeze(mask, -1)}, 2)
	require.Equal(t, []string{"pool.proj.weight", "pool.proj.bias", "head.weight", "head.bias"}, names(nn.NamedParameters(m)))

	var seen []string
	hook := func(name string, mod nn.Module, in, out *bridge.Tensor) {
		seen = append(seen, name+":"+nn.Kind(mod)+":"+out.Shape().String())
		if name == "pool" {
			require.Same(t, m.Pool, nn.Unwrap(mod))
			require.True(t, mod.(interface{ Training() bool }).Training())
			require.Equal(t, bridge.Shape{2, 4, 3}, in.Shape(), "the first input")
			err := bridge.Try(func() { mod.Forward(in) })
			require.ErrorContains(t, err, "nn.Module(pool): its Forward is not Forward(x) → y")
		}
	}
	h1, err := nn.RegisterForwardHook(m, "pool.**", hook)
	require.NoError(t, err)
	h0, err := nn.RegisterForwardHook(m, "head", hook)
	require.NoError(t, err)
	var all [][2]int
	h2, err := nn.RegisterForwardHookAll(m, "pool", func(name string, mod nn.AnyModule, ins, outs []*bridge.Tensor) {
		require.Same(t, m.Pool, mod)
		require.Equal(t, bridge.Shape{2, 4}, ins[1].Shape())
		require.Equal(t, bridge.Shape{2, 4, 3}, outs[1].Shape())
		all = append(all, [2]int{len(ins), len(outs)})
	})
	require.NoError(t, err)
	h3, err := nn.RegisterForwardHookAll(m, "head", func(name string, mod nn.AnyModule, ins, outs []*bridge.Tensor) {
		all = append(all, [2]int{len(ins), len(outs)})
	})
	require.NoError(t, err)

	y := m.Forward(xm)
	require.Equal(t, []string{"pool.proj:Linear:[2, 4, 3]", "pool:Module:[2, 3]", "head:Linear:[2, 2]"}, seen)
	require.Equal(t, [][2]int{{2, 2}, {1, 1}}, all)
	y.Sum().Backward()
	for _, p := range nn.Parameters(m) {
		require.NotNil(t, p.Grad())
	}
	// the masked rows got no gradient through the mean
	want, _ := m.Pool.Forward(x, mask)
	require.Equal(t, bridge.Shape{2, 3}, want.Shape())
	h0.Remove()
	h1.Remove()
	h2.Remove()
	h3.Remove()
	seen = nil
	m.Forward(xm)
	require.Empty(t, seen)
}

const pyContainers = `
class Containers(nn.Module):
    def __init__(self):
        super().__init__()
        self.stages = nn.ModuleList([nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 3), nn.ReLU())])
        self.heads = nn.ModuleDict({"cls": nn.Linear(3, 4), "box": nn.Linear(3, 2)})
        self.skip = nn.Identity()
`

type containers struct {
	nn.Node
	Stages *nn.ModuleList
	Heads  *nn.ModuleDict
	Skip   *nn.Identity
}

// ModuleList, ModuleDict and Identity name their children as PyTorch's do: the state dicts load
// into each other strictly.
func TestContainersMatchPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	c := &containers{Stages: nn.NewModuleList(nn.NewLinear(2, 2), nn.NewSequential(nn.NewLinear(2, 3), nn.NewReLU())),
		Heads: nn.NewModuleDict(), Skip: nn.NewIdentity()}
	c.Heads.Set("cls", nn.NewLinear(3, 4))
	c.Heads.Set("box", nn.NewLinear(3, 2))
	require.Equal(t, []string{"cls", "box"}, c.Heads.Keys())
	c.Heads.Set("cls", nn.NewLinear(3, 4)) // replaced in place
	require.Equal(t, []string{"cls", "box"}, c.Heads.Keys())
	require.Equal(t, 2, c.Stages.Len())
	_, isLinear := c.Stages.At(0).(*nn.Linear)
	require.True(t, isLinear)
	x := bridge.Randn(bridge.Shape{2, 2})
	require.Equal(t, x.Float32s(), c.Skip.Forward(x).Float32s())
	require.NoError(t, bridge.SaveNamed(filepath.Join(dir, "go.pt"), nn.StateDict(c)))

	fn := newFieldNet()
	require.NoError(t, bridge.SaveNamed(filepath.Join(dir, "field.pt"), nn.StateDict(fn)))

	torchpy.Run(t, `import sys, torch, torch.nn as nn`+pyContainers+pyFieldNet+`
c = Containers()
d = torch.load(sys.argv[1])
assert list(d.keys()) == list(c.state_dict().keys()), (list(d.keys()), list(c.state_dict().keys()))
c.load_state_dict(d, strict=True)
f = FieldNet()
d = torch.load(sys.argv[2])
assert list(d.keys()) == list(f.state_dict().keys()), (list(d.keys()), list(f.state_dict().keys()))
f.load_state_dict(d, strict=True)
`, filepath.Join(dir, "go.pt"), filepath.Join(dir, "field.pt"))
}

// What cannot be registered safely fails at the first walk, naming the module and the field.
type clash struct {
	nn.Node
	Weight *bridge.Tensor
	Other  *nn.Linear `nn:"weight"`
}

type withMap struct {
	nn.Node
	Heads map[string]*nn.Linear
}

type backRef struct {
	nn.Node
	Parent *cyclic
}

type cyclic struct {
	nn.Node
	Child *backRef
}

type mixed struct {
	nn.Node
	Layers []*nn.Linear
}

func TestDiscoveryErrorsNameTheField(t *testing.T) {
	cl := &clash{Weight: bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true), Other: nn.NewLinear(1, 1)}
	err := bridge.Try(func() { nn.Parameters(cl) })
	require.ErrorContains(t, err, `nn.Module: field Other would register "weight", which is already a parameter of this module`)

	wm := &withMap{Heads: map[string]*nn.Linear{"a": nn.NewLinear(1, 1)}}
	err = bridge.Try(func() { nn.StateDict(wm) })
	require.ErrorContains(t, err, "field Heads is a map of modules that are not registered: use nn.ModuleDict")

	cy := &cyclic{Child: &backRef{}}
	cy.Child.Parent = cy
	err = bridge.Try(func() { nn.Parameters(cy) })
	require.ErrorContains(t, err, "field Parent is this module or one of its ancestors")

	mx := &mixed{Layers: []*nn.Linear{nn.NewLinear(1, 1), nn.NewLinear(1, 1)}}
	mx.Add("first", mx.Layers[0])
	err = bridge.Try(func() { nn.Parameters(mx) })
	require.ErrorContains(t, err, "field Layers holds 1 modules registered as children and 1 that are not")

	m := newTiedLM(false)
	m.Head.Weight = aten.MulScalar(m.Tok.Weight, aten.FloatScalar(2))
	err = bridge.Try(func() { nn.Parameters(m) })
	require.ErrorContains(t, err, "nn.Linear(head): field Weight: a parameter must be a leaf tensor")

	err = bridge.Try(func() { c := &customConv{}; c.Param("w", nil); c.Param("w", nil) })
	require.ErrorContains(t, err, `"w" is already a parameter of this module`)
}

// cache keeps the last output in a field: plain state, even once its Scope has freed it.
type cache struct {
	nn.Node
	Lin  *nn.Linear
	last *bridge.Tensor
}

func (c *cache) Forward(x *bridge.Tensor) *bridge.Tensor {
	c.last = c.Lin.Forward(x)
	return c.Fire(x, c.last)
}

func TestNonParameterTensorFieldsAreLeftAlone(t *testing.T) {
	c := &cache{Lin: nn.NewLinear(2, 2)}
	bridge.Scope(func() { c.Forward(bridge.Ones(bridge.Shape{1, 2})).Sum().Backward() })
	require.True(t, c.last.IsFreed())
	require.Equal(t, []string{"lin.weight", "lin.bias"}, names(nn.NamedParameters(c)))
	c.Forward(bridge.Ones(bridge.Shape{1, 2})) // requires grad, not a leaf
	require.Equal(t, []string{"lin.weight", "lin.bias"}, names(nn.StateDict(c)))
}

// Walks from several goroutines (an optimizer built while featviz registers hooks) discover the
// fields once, consistently.
func TestConcurrentFirstWalks(t *testing.T) {
	n := newFieldNet()
	var wg sync.WaitGroup
	got := make([][]string, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = names(nn.StateDict(n))
		}()
	}
	wg.Wait()
	for _, g := range got {
		require.Equal(t, got[0], g)
	}
	require.Len(t, got[0], 15)
}

func childNames(m nn.AnyModule) []string {
	var out []string
	for _, c := range nn.Children(m) {
		out = append(out, c.Name)
	}
	return out
}

func TestSnakeCaseNames(t *testing.T) {
	type snakeNames struct {
		nn.Node
		LMHead, QKV, Conv2D, Block1Attn, HTTPServer, lnF, cAttn, H *nn.Identity
	}
	n := &snakeNames{}
	for _, p := range []**nn.Identity{&n.LMHead, &n.QKV, &n.Conv2D, &n.Block1Attn, &n.HTTPServer, &n.lnF, &n.cAttn, &n.H} {
		*p = nn.NewIdentity()
	}
	var got []string
	for _, c := range nn.Children(n) {
		got = append(got, c.Name)
	}
	require.Equal(t, "lm_head qkv conv2d block1_attn http_server ln_f c_attn h", strings.Join(got, " "))
}

func TestNamedBuffers(t *testing.T) {
	bn := nn.NewBatchNorm2d(4)
	m := nn.NewSequential(nn.NewConv2d(1, 4, 3), bn, nn.NewReLU(), nn.NewBatchNorm2d(4))
	var names []string
	for _, b := range nn.NamedBuffers(m) {
		names = append(names, b.Name)
	}
	// PyTorch's named_buffers() of the same Sequential.
	require.Equal(t, []string{"1.running_mean", "1.running_var", "1.num_batches_tracked",
		"3.running_mean", "3.running_var", "3.num_batches_tracked"}, names)
	require.Same(t, bn.RunningMean, nn.NamedBuffers(m)[0].Tensor, "the module's own tensors, not copies")
	shared := nn.NewSequential(bn, bn) // one module twice: its buffers once
	require.Len(t, nn.NamedBuffers(shared), 3)
	require.Empty(t, nn.NamedBuffers(nn.NewLinear(2, 2)))
}
