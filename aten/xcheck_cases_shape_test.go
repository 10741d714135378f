package aten_test

import (
	"fmt"
	"strings"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

func casesShape() []xcase {
	x := func() *bridge.Tensor { return rn(3, 5) }
	x3 := func() *bridge.Tensor { return rn(2, 3, 4) }
	// 50 dims: more ints than bridge.ATenArgs holds inline (48)
	many := []int64{3}
	for len(many) < 49 {
		many = append(many, 1)
	}
	many = append(many, 5)
	manyPy := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(many)), ", "), "[]")
	list := func(fn func([]*bridge.Tensor) *bridge.Tensor) func(v M) L {
		return func(v M) L { return L{fn([]*bridge.Tensor{v["x"], v["y"]})} }
	}
	return []xcase{
		unary("tril", func(a *bridge.Tensor) *bridge.Tensor { return aten.Tril(a, -1) }, "torch.tril(x, -1)", x()),
		unary("triu", func(a *bridge.Tensor) *bridge.Tensor { return aten.Triu(a, 1) }, "torch.triu(x, 1)", x3()),
		{name: "tril_inplace", in: M{"x": x()}, py: "x.tril_(1)", run: func(v M) L { return L{aten.Tril_(v["x"], 1)} }},
		{name: "chunk", in: M{"x": x()}, grad: []string{"x"}, py: "torch.chunk(x, 3, 1)", run: func(v M) L { return aten.Chunk(v["x"], 3, 1) }},
		{name: "split", in: M{"x": x()}, grad: []string{"x"}, py: "torch.split(x, 2, 1)", run: func(v M) L { return aten.Split(v["x"], 2, 1) }},
		{name: "split_sizes", in: M{"x": x()}, grad: []string{"x"}, py: "torch.split(x, [1, 2], 0)", run: func(v M) L { return aten.SplitSizes(v["x"], []int64{1, 2}, 0) }},
		{name: "split_with_sizes", in: M{"x": x()}, grad: []string{"x"}, py: "torch.split(x, [1, 3, 1], 1)",
			run: func(v M) L { return aten.SplitWithSizes(v["x"], []int64{1, 3, 1}, 1) }},
		{name: "tensor_split_sections", in: M{"x": x()}, grad: []string{"x"}, py: "torch.tensor_split(x, 3, 1)",
			run: func(v M) L { return aten.TensorSplitSections(v["x"], 3, 1) }},
		{name: "tensor_split_indices", in: M{"x": x()}, grad: []string{"x"}, py: "torch.tensor_split(x, [1, 4], 1)",
			run: func(v M) L { return aten.TensorSplitIndices(v["x"], []int64{1, 4}, 1) }},
		{name: "unbind", in: M{"x": x3()}, grad: []string{"x"}, py: "torch.unbind(x, 1)", run: func(v M) L { return aten.Unbind(v["x"], 1) }},
		{name: "stack", in: M{"x": x(), "y": x()}, grad: []string{"x", "y"}, py: "torch.stack([x, y], 1)",
			run: func(v M) L { return L{aten.Stack([]*bridge.Tensor{v["x"], v["y"]}, 1)} }},
		{name: "cat", in: M{"x": x(), "y": rn(2, 5)}, grad: []string{"x", "y"}, py: "torch.cat([x, y])",
			run: func(v M) L { return L{aten.Cat([]*bridge.Tensor{v["x"], v["y"]}, 0)} }},
		{name: "cat_promotes", in: M{"x": x(), "y": ri(0, 9, 3, 2)}, py: "torch.cat([x, y], 1)",
			run: func(v M) L { return L{aten.Cat([]*bridge.Tensor{v["x"], v["y"]}, 1)} }},
		{name: "hstack", in: M{"x": x(), "y": rn(3, 2)}, grad: []string{"x", "y"}, py: "torch.hstack([x, y])", run: list(aten.Hstack)},
		{name: "vstack", in: M{"x": x(), "y": rn(5)}, grad: []string{"x", "y"}, py: "torch.vstack([x, y])", run: list(aten.Vstack)},
		{name: "dstack", in: M{"x": x(), "y": x()}, grad: []string{"x", "y"}, py: "torch.dstack([x, y])", run: list(aten.Dstack)},
		{name: "column_stack", in: M{"x": rn(3), "y": rn(3, 2)}, grad: []string{"x", "y"}, py: "torch.column_stack([x, y])", run: list(aten.ColumnStack)},
		{name: "block_diag", in: M{"x": rn(2, 2), "y": rn(1, 3)}, grad: []string{"x", "y"}, py: "torch.block_diag(x, y)", run: list(aten.BlockDiag)},
		{name: "cartesian_prod", in: M{"x": rn(3), "y": rn(2)}, grad: []string{"x", "y"}, py: "torch.cartesian_prod(x, y)", run: list(aten.CartesianProd)},
		{name: "broadcast_tensors", in: M{"x": rn(3, 1), "y": rn(4)}, grad: []string{"x", "y"}, py: "torch.broadcast_tensors(x, y)",
			run: func(v M) L { return aten.BroadcastTensors([]*bridge.Tensor{v["x"], v["y"]}) }},
		{name: "meshgrid_xy", in: M{"x": rn(3), "y": rn(2)}, grad: []string{"x", "y"}, py: "torch.meshgrid(x, y, indexing='xy')",
			run: func(v M) L { return aten.MeshgridIndexing([]*bridge.Tensor{v["x"], v["y"]}, "xy") }},
		unary("combinations", func(a *bridge.Tensor) *bridge.Tensor { return aten.Combinations(a, 2, true) }, "torch.combinations(x, 2, with_replacement=True)", rn(4)),
		unary("flip", func(a *bridge.Tensor) *bridge.Tensor { return aten.Flip(a, []int64{0, 2}) }, "torch.flip(x, (0, 2))", x3()),
		unary("fliplr", aten.Fliplr, "torch.fliplr(x)", x()),
		unary("flipud", aten.Flipud, "torch.flipud(x)", x()),
		unary("roll", func(a *bridge.Tensor) *bridge.Tensor { return aten.Roll(a, []int64{1, -2}, []int64{0, 1}) }, "torch.roll(x, (1, -2), (0, 1))", x()),
		unary("roll_flat", func(a *bridge.Tensor) *bridge.Tensor { return aten.Roll(a, []int64{4}, nil) }, "torch.roll(x, 4)", x()),
		unary("rot90", func(a *bridge.Tensor) *bridge.Tensor { return aten.Rot90(a, 3, []int64{1, 2}) }, "torch.rot90(x, 3, (1, 2))", x3()),
		unary("repeat", func(a *bridge.Tensor) *bridge.Tensor { return aten.Repeat(a, []int64{2, 1, 3}) }, "x.repeat(2, 1, 3)", x()),
		unary("repeat_interleave", func(a *bridge.Tensor) *bridge.Tensor { return aten.RepeatInterleaveSelfInt(a, 2, aten.I(1), nil) }, "torch.repeat_interleave(x, 2, 1)", x()),
		{name: "repeat_interleave_tensor", in: M{"x": x(), "r": i64([]int64{1, 0, 3})}, grad: []string{"x"}, py: "torch.repeat_interleave(x, r, 0)",
			run: func(v M) L { return L{aten.RepeatInterleaveSelfTensor(v["x"], v["r"], aten.I(0), nil)} }},
		unary("tile", func(a *bridge.Tensor) *bridge.Tensor { return aten.Tile(a, []int64{2}) }, "torch.tile(x, (2,))", x()),
		unary("permute", func(a *bridge.Tensor) *bridge.Tensor { return aten.Permute(a, []int64{2, 0, 1}) }, "x.permute(2, 0, 1)", x3()),
		unary("movedim", func(a *bridge.Tensor) *bridge.Tensor { return aten.MovedimInt(a, 0, -1) }, "torch.movedim(x, 0, -1)", x3()),
		unary("movedim_list", func(a *bridge.Tensor) *bridge.Tensor { return aten.MovedimIntlist(a, []int64{0, 1}, []int64{2, 0}) }, "torch.movedim(x, (0, 1), (2, 0))", x3()),
		unary("swapaxes", func(a *bridge.Tensor) *bridge.Tensor { return aten.Swapaxes(a, 0, 2) }, "torch.swapaxes(x, 0, 2)", x3()),
		unary("transpose", func(a *bridge.Tensor) *bridge.Tensor { return aten.Transpose(a, -1, 0) }, "torch.transpose(x, -1, 0)", x3()),
		unary("t", aten.T, "torch.t(x)", x()),
		unary("constant_pad_nd", func(a *bridge.Tensor) *bridge.Tensor { return aten.ConstantPadNd(a, []int64{1, 2, 0, 1}, fs(0.5)) }, "F.pad(x, (1, 2, 0, 1), value=0.5)", x3()),
		unary("pad_reflect", func(a *bridge.Tensor) *bridge.Tensor { return aten.Pad(a, []int64{2, 1}, "reflect", nil) }, "F.pad(x, (2, 1), mode='reflect')", x3()),
		unary("pad_replicate", func(a *bridge.Tensor) *bridge.Tensor { return aten.Pad(a, []int64{1, 1, 2, 0}, "replicate", nil) }, "F.pad(x, (1, 1, 2, 0), mode='replicate')", rn(1, 2, 3, 4)),
		unary("pad_circular", func(a *bridge.Tensor) *bridge.Tensor { return aten.Pad(a, []int64{1, 2}, "circular", nil) }, "F.pad(x, (1, 2), mode='circular')", x3()),
		unary("pad_constant_value", func(a *bridge.Tensor) *bridge.Tensor { return aten.Pad(a, []int64{1, 0}, "constant", aten.F(-2)) }, "F.pad(x, (1, 0), value=-2.0)", x()),
		unary("reflection_pad1d", func(a *bridge.Tensor) *bridge.Tensor { return aten.ReflectionPad1d(a, []int64{2, 3}) }, "F.pad(x, (2, 3), mode='reflect')", x3()),
		unary("reflection_pad2d", func(a *bridge.Tensor) *bridge.Tensor { return aten.ReflectionPad2d(a, []int64{1, 2, 2, 1}) }, "F.pad(x, (1, 2, 2, 1), mode='reflect')", rn(1, 2, 3, 4)),
		unary("replication_pad2d", func(a *bridge.Tensor) *bridge.Tensor { return aten.ReplicationPad2d(a, []int64{0, 2, 1, 1}) }, "F.pad(x, (0, 2, 1, 1), mode='replicate')", rn(1, 2, 3, 4)),
		unary("narrow", func(a *bridge.Tensor) *bridge.Tensor { return aten.Narrow(a, 1, 1, 3) }, "torch.narrow(x, 1, 1, 3)", x()),
		unaryNG("narrow_copy", func(a *bridge.Tensor) *bridge.Tensor { return aten.NarrowCopy(a, 0, -2, 2) }, "x.narrow_copy(0, -2, 2)", x()),
		unary("squeeze", aten.Squeeze, "torch.squeeze(x)", rn(1, 3, 1, 2)),
		unary("squeeze_dim", func(a *bridge.Tensor) *bridge.Tensor { return aten.SqueezeDim(a, 2) }, "torch.squeeze(x, 2)", rn(1, 3, 1, 2)),
		unary("unsqueeze", func(a *bridge.Tensor) *bridge.Tensor { return aten.Unsqueeze(a, -1) }, "torch.unsqueeze(x, -1)", x()),
		unary("expand", func(a *bridge.Tensor) *bridge.Tensor { return aten.Expand(a, []int64{2, -1, 4}, false) }, "x.expand(2, -1, 4)", rn(3, 1)),
		binary("expand_as", aten.ExpandAs, "x.expand_as(y)", rn(3, 1), rn(2, 3, 4)),
		unary("broadcast_to", func(a *bridge.Tensor) *bridge.Tensor { return aten.BroadcastTo(a, []int64{2, 3, 4}) }, "torch.broadcast_to(x, (2, 3, 4))", rn(4)),
		unary("reshape", func(a *bridge.Tensor) *bridge.Tensor { return aten.Reshape(a, []int64{4, -1}) }, "torch.reshape(x, (4, -1))", x3()),
		unary("reshape_50_dims", func(a *bridge.Tensor) *bridge.Tensor { return aten.Sum(aten.Reshape(a, many), aten.D(bridge.Float64)) },
			"x.reshape("+manyPy+").sum(dtype=torch.float64)", x()),
		unary("view", func(a *bridge.Tensor) *bridge.Tensor { return aten.View(a, []int64{6, 4}) }, "x.view(6, 4)", x3()),
		binary("view_as", aten.ViewAs, "x.view_as(y)", x3(), rn(4, 6)),
		unary("flatten", func(a *bridge.Tensor) *bridge.Tensor { return aten.Flatten(a, 1, -1) }, "torch.flatten(x, 1)", x3()),
		unary("unflatten", func(a *bridge.Tensor) *bridge.Tensor { return aten.Unflatten(a, 1, []int64{5, 1}) }, "torch.unflatten(x, 1, (5, 1))", x()),
		unary("ravel", aten.Ravel, "torch.ravel(x)", x3()),
		unary("unfold", func(a *bridge.Tensor) *bridge.Tensor { return aten.Unfold(a, 1, 2, 1) }, "x.unfold(1, 2, 1)", x()),
		unary("atleast_2d", aten.Atleast2d, "torch.atleast_2d(x)", rn(3)),
		unary("atleast_3d", aten.Atleast3d, "torch.atleast_3d(x)", x()),
		unary("contiguous", func(a *bridge.Tensor) *bridge.Tensor { return aten.Contiguous(aten.T(a), aten.ContiguousFormat) }, "x.t().contiguous()", x()),
		unary("clone", func(a *bridge.Tensor) *bridge.Tensor { return aten.Clone(a, nil) }, "x.clone()", x()),
		unary("im2col", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.Im2col(a, []int64{2, 3}, []int64{1, 1}, []int64{1, 0}, []int64{1, 2})
		}, "F.unfold(x, (2, 3), padding=(1, 0), stride=(1, 2))", rn(2, 3, 5, 6)),
		unary("col2im", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.Col2im(a, []int64{4, 5}, []int64{2, 2}, []int64{1, 1}, []int64{0, 0}, []int64{1, 1})
		}, "F.fold(x, (4, 5), (2, 2))", rn(2, 12, 12)),
		unary("pixel_shuffle", func(a *bridge.Tensor) *bridge.Tensor { return aten.PixelShuffle(a, 2) }, "F.pixel_shuffle(x, 2)", rn(1, 8, 2, 3)),
		unary("pixel_unshuffle", func(a *bridge.Tensor) *bridge.Tensor { return aten.PixelUnshuffle(a, 2) }, "F.pixel_unshuffle(x, 2)", rn(1, 2, 4, 6)),
		unaryNG("channel_shuffle", func(a *bridge.Tensor) *bridge.Tensor { return aten.ChannelShuffle(a, 2) }, "F.channel_shuffle(x, 2)", rn(1, 6, 2, 2)),
		{name: "zeros", py: "torch.zeros(2, 3, dtype=torch.int32)", run: func(v M) L { return L{aten.Zeros([]int64{2, 3}, aten.Options{DType: aten.D(bridge.Int32)})} }},
		{name: "ones", py: "torch.ones(2, 3)", run: func(v M) L { return L{aten.Ones([]int64{2, 3}, aten.Options{})} }},
		{name: "full_int_infers", py: "torch.full((2, 2), 7)", run: func(v M) L { return L{aten.Full([]int64{2, 2}, is(7), aten.Options{})} }},
		{name: "full_float", py: "torch.full((3,), 0.25, dtype=torch.float64)",
			run: func(v M) L { return L{aten.Full([]int64{3}, fs(0.25), aten.Options{DType: aten.D(bridge.Float64)})} }},
		{name: "full_bool", py: "torch.full((2,), True)", run: func(v M) L { return L{aten.Full([]int64{2}, aten.BoolScalar(true), aten.Options{})} }},
		{name: "arange_int", py: "torch.arange(7)", run: func(v M) L { return L{aten.Arange(is(7), aten.Options{})} }},
		{name: "arange_float", py: "torch.arange(2.5)", run: func(v M) L { return L{aten.Arange(fs(2.5), aten.Options{})} }},
		{name: "arange_start", py: "torch.arange(-3, 4)", run: func(v M) L { return L{aten.ArangeStart(is(-3), is(4), aten.Options{})} }},
		{name: "arange_start_step", py: "torch.arange(1, 0, -0.125, dtype=torch.float64)",
			run: func(v M) L {
				return L{aten.ArangeStartStep(is(1), is(0), fs(-0.125), aten.Options{DType: aten.D(bridge.Float64)})}
			}},
		{name: "linspace", py: "torch.linspace(-1, 2, 7)", run: func(v M) L { return L{aten.Linspace(is(-1), is(2), 7, aten.Options{})} }},
		{name: "logspace", py: "torch.logspace(0, 3, 4, base=2.0)", run: func(v M) L { return L{aten.Logspace(is(0), is(3), 4, 2, aten.Options{})} }},
		{name: "eye", py: "torch.eye(3)", run: func(v M) L { return L{aten.Eye(3, aten.Options{})} }},
		{name: "eye_m", py: "torch.eye(2, 4, dtype=torch.bool)", run: func(v M) L { return L{aten.EyeM(2, 4, aten.Options{DType: aten.D(bridge.Bool)})} }},
		unaryNG("zeros_like", func(a *bridge.Tensor) *bridge.Tensor { return aten.ZerosLike(a, aten.Options{}, nil) }, "torch.zeros_like(x)", ri(0, 5, 2, 3)),
		unaryNG("ones_like_dtype", func(a *bridge.Tensor) *bridge.Tensor {
			return aten.OnesLike(a, aten.Options{DType: aten.D(bridge.Float64)}, nil)
		},
			"torch.ones_like(x, dtype=torch.float64)", x()),
		unaryNG("full_like", func(a *bridge.Tensor) *bridge.Tensor { return aten.FullLike(a, fs(2.5), aten.Options{}, nil) }, "torch.full_like(x, 2.5)", x()),
		unaryNG("new_zeros", func(a *bridge.Tensor) *bridge.Tensor { return aten.NewZeros(a, []int64{4}, aten.Options{}) }, "x.new_zeros(4)", ri(0, 5, 2, 3)),
		unaryNG("new_full", func(a *bridge.Tensor) *bridge.Tensor { return aten.NewFull(a, []int64{2, 2}, is(3), aten.Options{}) }, "x.new_full((2, 2), 3)", x()),
		{name: "fill_scalar_inplace", in: M{"x": x()}, py: "x.fill_(1.5)", run: func(v M) L { return L{aten.FillScalar_(v["x"], fs(1.5))} }},
		{name: "zero_inplace", in: M{"x": x()}, py: "x.zero_()", run: func(v M) L { return L{aten.Zero_(v["x"])} }},
		{name: "copy_inplace_broadcast", in: M{"x": x(), "y": ri(0, 9, 5)}, py: "x.copy_(y)", run: func(v M) L { return L{aten.Copy_(v["x"], v["y"], false)} }},
	}
}
