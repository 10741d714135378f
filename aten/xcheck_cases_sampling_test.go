package aten_test

import (
	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// Sampling: each case seeds libtorch's default generator (bridge.ManualSeed here,
// torch.manual_seed in Python) right before the op, and the results must be equal bit for bit:
// Debian's libtorch and python3-torch are the same build, so the same seed draws the same
// numbers.
func casesSampling() []xcase {
	x := func() *bridge.Tensor { return bridge.Zeros(bridge.Shape{3, 4}) }
	p := func() *bridge.Tensor { return uni(0, 1, 3, 4) }
	seed := uint64(1000)
	s := func(c xcase) xcase {
		seed++
		c.seed = seed
		return c
	}
	return []xcase{
		s(xcase{name: "multinomial_replacement", in: M{"p": uni(0.1, 1, 3, 5)}, py: "torch.multinomial(p, 7, True)",
			run: func(v M) L { return L{aten.Multinomial(v["p"], 7, true)} }}),
		s(xcase{name: "multinomial", in: M{"p": uni(0.1, 1, 6)}, py: "torch.multinomial(p, 4)",
			run: func(v M) L { return L{aten.Multinomial(v["p"], 4, false)} }}),
		s(xcase{name: "randperm", py: "torch.randperm(10)", run: func(v M) L { return L{aten.Randperm(10, aten.Options{})} }}),
		s(xcase{name: "randperm_large_float", py: "torch.randperm(3000, dtype=torch.float32)",
			run: func(v M) L { return L{aten.Randperm(3000, aten.Options{DType: aten.D(bridge.Float32)})} }}),
		s(xcase{name: "randperm_out", py: "torch.randperm(6, out=torch.empty(0, dtype=torch.int64))",
			run: func(v M) L { return L{aten.RandpermOut(6, bridge.Empty(bridge.Shape{0}, bridge.Int64))} }}),
		s(xcase{name: "bernoulli", in: M{"p": p()}, py: "torch.bernoulli(p)", run: func(v M) L { return L{aten.Bernoulli(v["p"])} }}),
		s(xcase{name: "bernoulli_p", in: M{"x": x()}, py: "torch.bernoulli(x, 0.3)", run: func(v M) L { return L{aten.BernoulliP(v["x"], 0.3)} }}),
		s(xcase{name: "bernoulli_tensor", in: M{"x": x(), "p": p()}, py: "torch.ops.aten.bernoulli.Tensor(x, p)", run: func(v M) L { return L{aten.BernoulliTensor(v["x"], v["p"])} }}),
		s(xcase{name: "bernoulli_float_inplace", in: M{"x": x()}, py: "x.bernoulli_(0.7)", run: func(v M) L { return L{aten.BernoulliFloat_(v["x"], 0.7)} }}),
		s(xcase{name: "bernoulli_tensor_inplace", in: M{"x": x(), "p": p()}, py: "x.bernoulli_(p)", run: func(v M) L { return L{aten.Bernoulli_(v["x"], v["p"])} }}),
		s(xcase{name: "normal_tensor_tensor", in: M{"m": rn(3, 4), "sd": uni(0.5, 2, 3, 4)}, py: "torch.normal(m, sd)",
			run: func(v M) L { return L{aten.NormalTensorTensor(v["m"], v["sd"])} }}),
		s(xcase{name: "normal_tensor_float", in: M{"m": rn(3, 4)}, py: "torch.normal(m, 2.0)", run: func(v M) L { return L{aten.NormalTensorFloat(v["m"], 2)} }}),
		s(xcase{name: "normal_float_tensor", in: M{"sd": uni(0.5, 2, 5)}, py: "torch.normal(1.0, sd)", run: func(v M) L { return L{aten.NormalFloatTensor(1, v["sd"])} }}),
		s(xcase{name: "normal_float_float", py: "torch.normal(0.5, 2.0, (3, 4))",
			run: func(v M) L { return L{aten.NormalFloatFloat(0.5, 2, []int64{3, 4}, aten.Options{})} }}),
		s(xcase{name: "normal_inplace", in: M{"x": x()}, py: "x.normal_(1, 3)", run: func(v M) L { return L{aten.Normal_(v["x"], 1, 3)} }}),
		// randint's schema default dtype=long: Options{} must give int64, as torch.randint does
		s(xcase{name: "randint", py: "torch.randint(10, (3, 4))",
			run: func(v M) L { return L{aten.Randint(10, []int64{3, 4}, aten.Options{})} }}),
		s(xcase{name: "randint_low_int32", py: "torch.randint(-5, 5, (6,), dtype=torch.int32)",
			run: func(v M) L { return L{aten.RandintLow(-5, 5, []int64{6}, aten.Options{DType: aten.D(bridge.Int32)})} }}),
		s(xcase{name: "rand", py: "torch.rand(2, 3)", run: func(v M) L { return L{aten.Rand([]int64{2, 3}, aten.Options{})} }}),
		s(xcase{name: "rand_float64", py: "torch.rand(5, dtype=torch.float64)", run: func(v M) L { return L{aten.Rand([]int64{5}, aten.Options{DType: aten.D(bridge.Float64)})} }}),
		s(xcase{name: "randn", py: "torch.randn(2, 3)", run: func(v M) L { return L{aten.Randn([]int64{2, 3}, aten.Options{})} }}),
		s(xcase{name: "randn_large", py: "torch.randn(40)", run: func(v M) L { return L{aten.Randn([]int64{40}, aten.Options{})} }}),
		s(xcase{name: "rand_like", in: M{"x": x()}, py: "torch.rand_like(x)", run: func(v M) L { return L{aten.RandLike(v["x"], aten.Options{}, nil)} }}),
		s(xcase{name: "randn_like", in: M{"x": x()}, py: "torch.randn_like(x, dtype=torch.float64)",
			run: func(v M) L { return L{aten.RandnLike(v["x"], aten.Options{DType: aten.D(bridge.Float64)}, nil)} }}),
		s(xcase{name: "randint_like", in: M{"x": x()}, py: "torch.randint_like(x, 7)", run: func(v M) L { return L{aten.RandintLike(v["x"], 7, aten.Options{}, nil)} }}),
		s(xcase{name: "uniform_inplace", in: M{"x": x()}, py: "x.uniform_(-1, 2)", run: func(v M) L { return L{aten.Uniform_(v["x"], -1, 2)} }}),
		s(xcase{name: "exponential_inplace", in: M{"x": x()}, py: "x.exponential_(1.5)", run: func(v M) L { return L{aten.Exponential_(v["x"], 1.5)} }}),
		s(xcase{name: "geometric_inplace", in: M{"x": x()}, py: "x.geometric_(0.3)", run: func(v M) L { return L{aten.Geometric_(v["x"], 0.3)} }}),
		s(xcase{name: "cauchy_inplace", in: M{"x": x()}, py: "x.cauchy_()", run: func(v M) L { return L{aten.Cauchy_(v["x"], 0, 1)} }}),
		s(xcase{name: "log_normal_inplace", in: M{"x": x()}, py: "x.log_normal_()", run: func(v M) L { return L{aten.LogNormal_(v["x"], 1, 2)} }}),
		s(xcase{name: "random_inplace", in: M{"x": ri(0, 1, 6)}, py: "x.random_()", run: func(v M) L { return L{aten.Random_(v["x"])} }}),
		s(xcase{name: "random_from_inplace", in: M{"x": ri(0, 1, 6)}, py: "x.random_(-3, 3)", run: func(v M) L { return L{aten.RandomFrom_(v["x"], -3, aten.I(3))} }}),
		s(xcase{name: "random_to_inplace", in: M{"x": x()}, py: "x.random_(5)", run: func(v M) L { return L{aten.RandomTo_(v["x"], 5)} }}),
		s(xcase{name: "poisson", in: M{"r": uni(0.5, 8, 10)}, py: "torch.poisson(r)", run: func(v M) L { return L{aten.Poisson(v["r"])} }}),
		s(xcase{name: "binomial", in: M{"n": ri(1, 20, 8).To(bridge.Float32), "p": uni(0, 1, 8)}, py: "torch.binomial(n, p)",
			run: func(v M) L { return L{aten.Binomial(v["n"], v["p"])} }}),
		s(xcase{name: "dropout_train", in: M{"x": rn(4, 5)}, grad: []string{"x"}, py: "F.dropout(x, 0.4, True)",
			run: func(v M) L { return L{aten.Dropout(v["x"], 0.4, true)} }}),
		s(xcase{name: "dropout_eval", in: M{"x": rn(4, 5)}, grad: []string{"x"}, py: "F.dropout(x, 0.4, False)",
			run: func(v M) L { return L{aten.Dropout(v["x"], 0.4, false)} }}),
		s(xcase{name: "feature_dropout", in: M{"x": rn(2, 6, 3, 3)}, grad: []string{"x"}, py: "F.dropout2d(x, 0.5, True)",
			run: func(v M) L { return L{aten.FeatureDropout(v["x"], 0.5, true)} }}),
		s(xcase{name: "alpha_dropout", in: M{"x": rn(4, 5)}, grad: []string{"x"}, py: "F.alpha_dropout(x, 0.3, True)",
			run: func(v M) L { return L{aten.AlphaDropout(v["x"], 0.3, true)} }}),
		s(xcase{name: "native_dropout", in: M{"x": rn(4, 5)}, grad: []string{"x"}, py: "torch.native_dropout(x, 0.3, True)",
			run: func(v M) L { o, m := aten.NativeDropout(v["x"], 0.3, aten.B(true)); return L{o, m} }}),
		s(xcase{name: "rrelu_train", in: M{"x": rn(4, 5)}, grad: []string{"x"}, py: "F.rrelu(x, 0.1, 0.3, True)",
			run: func(v M) L { return L{aten.Rrelu(v["x"], fs(0.1), fs(0.3), true)} }}),
		// Deterministic given its samples (PyTorch draws them when none are passed).
		{name: "fractional_max_pool2d", in: M{"x": rn(1, 2, 7, 7), "u": uni(0, 1, 1, 2, 2)}, grad: []string{"x"},
			py: "F.fractional_max_pool2d(x, 2, output_size=3, return_indices=True, _random_samples=u)",
			run: func(v M) L {
				o, i := aten.FractionalMaxPool2d(v["x"], []int64{2, 2}, []int64{3, 3}, v["u"])
				return L{o, i}
			}},
	}
}
