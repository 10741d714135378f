package aten_test

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

func casesLosses() []xcase {
	logits := func() *bridge.Tensor { return rn(4, 5) }
	target := func() *bridge.Tensor { return i64([]int64{1, 0, 4, 2}) }
	loss := func(name, py string, x, y *bridge.Tensor, f func(x, y *bridge.Tensor) *bridge.Tensor) xcase {
		return xcase{name: name, in: M{"x": x, "y": y}, grad: []string{"x"}, py: py, run: func(v M) L { return L{f(v["x"], v["y"])} }}
	}
	loss2 := func(name, py string, x, y *bridge.Tensor, f func(x, y *bridge.Tensor) *bridge.Tensor) xcase {
		c := loss(name, py, x, y, f)
		c.grad = []string{"x", "y"}
		return c
	}
	return []xcase{
		loss("cross_entropy", "F.cross_entropy(x, y)", logits(), target(),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.CrossEntropyLoss(x, y, nil, redMean, -100, 0) }),
		{name: "cross_entropy_weight_smoothing_ignore", in: M{"x": logits(), "y": target(), "w": uni(0.5, 2, 5)}, grad: []string{"x"},
			py:  "F.cross_entropy(x, y, w, ignore_index=4, label_smoothing=0.1)",
			run: func(v M) L { return L{aten.CrossEntropyLoss(v["x"], v["y"], v["w"], redMean, 4, 0.1)} }},
		loss("cross_entropy_none_2d", "F.cross_entropy(x, y, reduction='none')", rn(2, 3, 4, 4), ri(0, 3, 2, 4, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.CrossEntropyLoss(x, y, nil, redNone, -100, 0) }),
		loss2("cross_entropy_probabilities", "F.cross_entropy(x, y, reduction='sum')", logits(), uni(0, 1, 4, 5),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.CrossEntropyLoss(x, y, nil, redSum, -100, 0) }),
		loss("nll_loss", "F.nll_loss(x, y)", logits(), target(),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.NllLoss(x, y, nil, redMean, -100) }),
		{name: "nll_loss_weight_sum", in: M{"x": logits(), "y": target(), "w": uni(0.5, 2, 5)}, grad: []string{"x"}, py: "F.nll_loss(x, y, w, reduction='sum', ignore_index=0)",
			run: func(v M) L { return L{aten.NllLoss(v["x"], v["y"], v["w"], redSum, 0)} }},
		loss("nll_loss2d", "F.nll_loss(x, y)", rn(2, 3, 4, 4), ri(0, 3, 2, 4, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.NllLoss2d(x, y, nil, redMean, -100) }),
		loss("nll_loss_nd", "F.nll_loss(x, y, reduction='none')", rn(2, 3, 4), ri(0, 3, 2, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.NllLossNd(x, y, nil, redNone, -100) }),
		loss2("mse_loss", "F.mse_loss(x, y)", rn(3, 4), rn(3, 4), func(x, y *bridge.Tensor) *bridge.Tensor { return aten.MseLoss(x, y, redMean) }),
		loss2("mse_loss_none", "F.mse_loss(x, y, reduction='none')", rn(3, 4), rn(3, 4), func(x, y *bridge.Tensor) *bridge.Tensor { return aten.MseLoss(x, y, redNone) }),
		loss2("l1_loss_sum", "F.l1_loss(x, y, reduction='sum')", rn(3, 4), rn(3, 4), func(x, y *bridge.Tensor) *bridge.Tensor { return aten.L1Loss(x, y, redSum) }),
		{name: "binary_cross_entropy", in: M{"x": uni(0.05, 0.95, 3, 4), "y": uni(0, 1, 3, 4), "w": uni(0.5, 2, 3, 4)}, grad: []string{"x"},
			py: "F.binary_cross_entropy(x, y, w)", run: func(v M) L { return L{aten.BinaryCrossEntropy(v["x"], v["y"], v["w"], redMean)} }},
		{name: "binary_cross_entropy_with_logits", in: M{"x": rn(3, 4), "y": uni(0, 1, 3, 4), "w": uni(0.5, 2, 4), "pw": uni(0.5, 3, 4)},
			grad: []string{"x", "y"}, py: "F.binary_cross_entropy_with_logits(x, y, w, pos_weight=pw)",
			run: func(v M) L { return L{aten.BinaryCrossEntropyWithLogits(v["x"], v["y"], v["w"], v["pw"], redMean)} }},
		loss2("binary_cross_entropy_with_logits_plain", "F.binary_cross_entropy_with_logits(x, y, reduction='none')", rn(3, 4), uni(0, 1, 3, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor {
				return aten.BinaryCrossEntropyWithLogits(x, y, nil, nil, redNone)
			}),
		loss2("smooth_l1_loss", "F.smooth_l1_loss(x, y, beta=0.5)", rn(3, 4), rn(3, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.SmoothL1Loss(x, y, redMean, 0.5) }),
		loss2("huber_loss", "F.huber_loss(x, y, reduction='sum', delta=0.7)", rn(3, 4), rn(3, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.HuberLoss(x, y, redSum, 0.7) }),
		loss2("kl_div", "F.kl_div(x, y, reduction='sum')", rn(3, 4), uni(0.05, 1, 3, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.KlDiv(x, y, redSum, false) }),
		loss2("kl_div_log_target", "F.kl_div(x, y, reduction='none', log_target=True)", rn(3, 4), rn(3, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.KlDiv(x, y, redNone, true) }),
		{name: "ctc_loss", in: M{"lp": rn(6, 2, 5).LogSoftmax(2), "t": i64([]int64{1, 2, 2, 3, 4, 1}, 2, 3), "il": i64([]int64{6, 5}), "tl": i64([]int64{3, 2})},
			grad: []string{"lp"}, py: "torch.ctc_loss(lp, t, il, tl, 0, 1, False)",
			run: func(v M) L { return L{aten.CtcLoss(v["lp"], v["t"], v["il"], v["tl"], 0, redMean, false)} }},
		{name: "ctc_loss_intlist", in: M{"lp": rn(6, 2, 5).LogSoftmax(2), "t": i64([]int64{1, 2, 2, 3, 4, 1}, 2, 3)}, grad: []string{"lp"},
			py: "F.ctc_loss(lp, t, [6, 5], [3, 2], reduction='sum')",
			run: func(v M) L {
				return L{aten.CtcLossIntList(v["lp"], v["t"], []int64{6, 5}, []int64{3, 2}, 0, redSum, false)}
			}},
		{name: "margin_ranking_loss", in: M{"a": rn(6), "b": rn(6), "y": f32([]float32{1, -1, 1, 1, -1, -1})}, grad: []string{"a", "b"},
			py: "F.margin_ranking_loss(a, b, y, margin=0.2)", run: func(v M) L { return L{aten.MarginRankingLoss(v["a"], v["b"], v["y"], 0.2, redMean)} }},
		loss("hinge_embedding_loss", "F.hinge_embedding_loss(x, y, margin=0.5)", rn(6), f32([]float32{1, -1, 1, 1, -1, -1}),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.HingeEmbeddingLoss(x, y, 0.5, redMean) }),
		loss("soft_margin_loss", "F.soft_margin_loss(x, y)", rn(6), f32([]float32{1, -1, 1, 1, -1, -1}),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.SoftMarginLoss(x, y, redMean) }),
		loss("multilabel_margin_loss", "F.multilabel_margin_loss(x, y)", rn(2, 4), i64([]int64{3, 0, -1, 1, 1, 2, 3, -1}, 2, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.MultilabelMarginLoss(x, y, redMean) }),
		{name: "multi_margin_loss", in: M{"x": logits(), "y": target(), "w": uni(0.5, 2, 5)}, grad: []string{"x"}, py: "F.multi_margin_loss(x, y, p=2, margin=0.5, weight=w)",
			run: func(v M) L { return L{aten.MultiMarginLoss(v["x"], v["y"], is(2), fs(0.5), v["w"], redMean)} }},
		{name: "cosine_embedding_loss", in: M{"a": rn(4, 3), "b": rn(4, 3), "y": f32([]float32{1, -1, -1, 1})}, grad: []string{"a", "b"},
			py: "F.cosine_embedding_loss(a, b, y, margin=0.1)", run: func(v M) L { return L{aten.CosineEmbeddingLoss(v["a"], v["b"], v["y"], 0.1, redMean)} }},
		{name: "triplet_margin_loss", in: M{"a": rn(4, 3), "p": rn(4, 3), "n": rn(4, 3)}, grad: []string{"a", "p", "n"},
			py:  "F.triplet_margin_loss(a, p, n, margin=0.5, p=1.5, swap=True)",
			run: func(v M) L { return L{aten.TripletMarginLoss(v["a"], v["p"], v["n"], 0.5, 1.5, 1e-6, true, redMean)} }},
		loss("poisson_nll_loss", "F.poisson_nll_loss(x, y, log_input=True, full=True)", rn(3, 4), uni(0, 5, 3, 4),
			func(x, y *bridge.Tensor) *bridge.Tensor { return aten.PoissonNllLoss(x, y, true, true, 1e-8, redMean) }),
	}
}

func casesActivations() []xcase {
	x := func() *bridge.Tensor { return rn(3, 5) }
	return []xcase{
		unary("softmax", func(a *bridge.Tensor) *bridge.Tensor { return aten.Softmax(a, 1, nil) }, "torch.softmax(x, 1)", x()),
		unary("softmax_dtype", func(a *bridge.Tensor) *bridge.Tensor { return aten.Softmax(a, 0, aten.D(bridge.Float64)) }, "torch.softmax(x, 0, dtype=torch.float64)", x()),
		unary("log_softmax", func(a *bridge.Tensor) *bridge.Tensor { return aten.LogSoftmax(a, -1, nil) }, "F.log_softmax(x, -1)", x()),
		unary("_softmax", func(a *bridge.Tensor) *bridge.Tensor { return aten.InternalSoftmax(a, 1, false) }, "torch._softmax(x, 1, False)", x()),
		unary("_log_softmax", func(a *bridge.Tensor) *bridge.Tensor { return aten.InternalLogSoftmax(a, 0, false) }, "torch._log_softmax(x, 0, False)", x()),
		unary("relu", aten.Relu, "torch.relu(x)", x()),
		unary("relu6", aten.Relu6, "F.relu6(x)", x().MulScalar(4)),
		unary("gelu", func(a *bridge.Tensor) *bridge.Tensor { return aten.Gelu(a, "none") }, "F.gelu(x)", x()),
		unary("gelu_tanh", func(a *bridge.Tensor) *bridge.Tensor { return aten.Gelu(a, "tanh") }, "F.gelu(x, approximate='tanh')", x()),
		unary("silu", aten.Silu, "F.silu(x)", x()),
		unary("mish", aten.Mish, "F.mish(x)", x()),
		unary("hardswish", aten.Hardswish, "F.hardswish(x)", x().MulScalar(3)),
		unary("hardsigmoid", aten.Hardsigmoid, "F.hardsigmoid(x)", x().MulScalar(3)),
		unary("hardtanh", func(a *bridge.Tensor) *bridge.Tensor { return aten.Hardtanh(a, fs(-0.5), fs(0.8)) }, "F.hardtanh(x, -0.5, 0.8)", x()),
		unary("elu", func(a *bridge.Tensor) *bridge.Tensor { return aten.Elu(a, fs(1.2), is(1), is(1)) }, "F.elu(x, 1.2)", x()),
		unary("selu", aten.Selu, "F.selu(x)", x()),
		unary("celu", func(a *bridge.Tensor) *bridge.Tensor { return aten.Celu(a, fs(0.7)) }, "F.celu(x, 0.7)", x()),
		unary("leaky_relu", func(a *bridge.Tensor) *bridge.Tensor { return aten.LeakyRelu(a, fs(0.2)) }, "F.leaky_relu(x, 0.2)", x()),
		unary("softplus", func(a *bridge.Tensor) *bridge.Tensor { return aten.Softplus(a, fs(2), fs(1)) }, "F.softplus(x, 2, 1)", x()),
		unary("softshrink", func(a *bridge.Tensor) *bridge.Tensor { return aten.Softshrink(a, fs(0.3)) }, "F.softshrink(x, 0.3)", x()),
		unary("hardshrink", func(a *bridge.Tensor) *bridge.Tensor { return aten.Hardshrink(a, fs(0.3)) }, "F.hardshrink(x, 0.3)", x()),
		unary("log_sigmoid", aten.LogSigmoid, "F.logsigmoid(x)", x()),
		unary("threshold", func(a *bridge.Tensor) *bridge.Tensor { return aten.Threshold(a, fs(0.1), fs(-5)) }, "F.threshold(x, 0.1, -5.0)", x()),
		unary("glu", func(a *bridge.Tensor) *bridge.Tensor { return aten.Glu(a, 0) }, "F.glu(x, 0)", rn(4, 3)),
		binary("prelu", aten.Prelu, "F.prelu(x, y)", rn(2, 3, 4), uni(0.1, 0.5, 3)),
		unary("rrelu_eval", func(a *bridge.Tensor) *bridge.Tensor { return aten.Rrelu(a, fs(0.1), fs(0.3), false) }, "F.rrelu(x, 0.1, 0.3, False)", x()),
		{name: "relu_inplace", in: M{"x": x()}, py: "x.relu_()", run: func(v M) L { return L{aten.Relu_(v["x"])} }},
		{name: "gelu_inplace", in: M{"x": x()}, py: "torch.ops.aten.gelu_(x, approximate='tanh')", run: func(v M) L { return L{aten.Gelu_(v["x"], "tanh")} }},
	}
}
