package aten_test

import (
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// The cross-check's cases, by category: one function per category, named cases*, in the
// files xcheck_cases*_test.go (TestCrossCheckCoverage counts the aten functions each one
// calls). A case's tolerance is its tol field, or defaultTol of the result's dtype when it has
// none; sampling cases (seed) and integer and bool results are compared exactly. Inputs are drawn once,
// from a fixed seed, and sent to PyTorch as they are, so both sides compute on the same
// numbers. Python code sees the inputs under their names, torch, F (torch.nn.functional),
// nn and math.

// ATen's reduction enum (at::Reduction): the int reduction argument of the loss ops.
const (
	redNone int64 = 0
	redMean int64 = 1
	redSum  int64 = 2
)

// categories are the case tables, in the order they run.
var categories = []func() []xcase{
	casesElementwise, casesReductions, casesIndexing, casesShape, casesLinalg,
	casesConvPool, casesNorm, casesRNN, casesSampling, casesLosses, casesActivations, casesResults,
}

func allCases() []xcase {
	var all []xcase
	for _, f := range categories {
		all = append(all, f()...)
	}
	return all
}

// Inputs.

func shp(s []int64) bridge.Shape { return bridge.Shape(s) }

// rn is float32 standard normal; rn64 float64.
func rn(s ...int64) *bridge.Tensor   { return bridge.Randn(shp(s)) }
func rn64(s ...int64) *bridge.Tensor { return bridge.Randn(shp(s), bridge.Float64) }

// uni is float32 uniform in [lo, hi).
func uni(lo, hi float64, s ...int64) *bridge.Tensor {
	return bridge.Rand(shp(s)).MulScalar(hi - lo).AddScalar(lo)
}

// ri is int64 uniform in [lo, hi).
func ri(lo, hi int64, s ...int64) *bridge.Tensor { return bridge.RandInt(lo, hi, shp(s)) }

func posInf() float64 { return math.Inf(1) }
func negInf() float64 { return math.Inf(-1) }
func nan() float64    { return math.NaN() }

func f32(v []float32, s ...int64) *bridge.Tensor { return bridge.FromSlice(v, s...) }
func i64(v []int64, s ...int64) *bridge.Tensor   { return bridge.FromSlice(v, s...) }

// mask is a random bool tensor, about half true.
func mask(s ...int64) *bridge.Tensor { return bridge.Rand(shp(s)).GtScalar(0.5) }

// spd is a float64 symmetric positive-definite n×n matrix (batched by b when b > 0).
func spd(n int64, b ...int64) *bridge.Tensor {
	a := rn64(append(b, n, n)...)
	s := a.MatMul(a.Transpose(-1, -2))
	return s.Add(bridge.Eye(n, n, bridge.Float64).MulScalar(float64(n)))
}

// Case makers.

// unary: y = f(x) with the gradient of x.
func unary(name string, f func(*bridge.Tensor) *bridge.Tensor, py string, x *bridge.Tensor) xcase {
	return xcase{name: name, in: M{"x": x}, grad: []string{"x"}, py: py,
		run: func(v M) L { return L{f(v["x"])} }}
}

// unaryNG: y = f(x), no gradient (integer or bool results, or no derivative).
func unaryNG(name string, f func(*bridge.Tensor) *bridge.Tensor, py string, x *bridge.Tensor) xcase {
	return xcase{name: name, in: M{"x": x}, py: py, run: func(v M) L { return L{f(v["x"])} }}
}

// binary: z = f(x, y) with the gradients of both.
func binary(name string, f func(a, b *bridge.Tensor) *bridge.Tensor, py string, x, y *bridge.Tensor) xcase {
	return xcase{name: name, in: M{"x": x, "y": y}, grad: []string{"x", "y"}, py: py,
		run: func(v M) L { return L{f(v["x"], v["y"])} }}
}

// binaryNG: z = f(x, y), no gradient.
func binaryNG(name string, f func(a, b *bridge.Tensor) *bridge.Tensor, py string, x, y *bridge.Tensor) xcase {
	return xcase{name: name, in: M{"x": x, "y": y}, py: py, run: func(v M) L { return L{f(v["x"], v["y"])} }}
}

func fs(v float64) aten.Scalar { return aten.FloatScalar(v) }
func is(v int64) aten.Scalar   { return aten.IntScalar(v) }

func casesElementwise() []xcase {
	x := func() *bridge.Tensor { return rn(3, 4) }
	pos := func() *bridge.Tensor { return uni(0.1, 3, 3, 4) }
	unit := func() *bridge.Tensor { return uni(-0.9, 0.9, 3, 4) }
	wide := func() *bridge.Tensor { return rn(3, 4).MulScalar(3) }
	special := f32([]float32{0.5, -1.5, 2.5, -0.0, float32(posInf()), float32(negInf()), float32(nan()), 1e-30}, 8)
	return []xcase{
		unary("abs", aten.Abs, "torch.abs(x)", x()),
		unary("neg", aten.Neg, "torch.neg(x)", x()),
		unary("sin", aten.Sin, "torch.sin(x)", x()),
		unary("cos", aten.Cos, "torch.cos(x)", x()),
		unary("tan", aten.Tan, "torch.tan(x)", unit()),
		unary("asin", aten.Asin, "torch.asin(x)", unit()),
		unary("acos", aten.Acos, "torch.acos(x)", unit()),
		unary("atan", aten.Atan, "torch.atan(x)", x()),
		unary("sinh", aten.Sinh, "torch.sinh(x)", x()),
		unary("cosh", aten.Cosh, "torch.cosh(x)", x()),
		unary("tanh", aten.Tanh, "torch.tanh(x)", x()),
		unary("asinh", aten.Asinh, "torch.asinh(x)", x()),
		unary("acosh", aten.Acosh, "torch.acosh(x)", uni(1.1, 4, 3, 4)),
		unary("atanh", aten.Atanh, "torch.atanh(x)", unit()),
		unary("exp", aten.Exp, "torch.exp(x)", x()),
		unary("exp2", aten.Exp2, "torch.exp2(x)", x()),
		unary("expm1", aten.Expm1, "torch.expm1(x)", x()),
		unary("log", aten.Log, "torch.log(x)", pos()),
		unary("log2", aten.Log2, "torch.log2(x)", pos()),
		unary("log10", aten.Log10, "torch.log10(x)", pos()),
		unary("log1p", aten.Log1p, "torch.log1p(x)", pos()),
		unary("sqrt", aten.Sqrt, "torch.sqrt(x)", pos()),
		unary("rsqrt", aten.Rsqrt, "torch.rsqrt(x)", pos()),
		unary("reciprocal", aten.Reciprocal, "torch.reciprocal(x)", pos()),
		unary("square", aten.Square, "torch.square(x)", x()),
		unary("sigmoid", aten.Sigmoid, "torch.sigmoid(x)", x()),
		unary("logit", func(a *bridge.Tensor) *bridge.Tensor { return aten.Logit(a, aten.F(0.05)) }, "torch.logit(x, eps=0.05)", uni(0.01, 0.99, 3, 4)),
		unary("erf", aten.Erf, "torch.erf(x)", x()),
		unary("erfc", aten.Erfc, "torch.erfc(x)", x()),
		unary("erfinv", aten.Erfinv, "torch.erfinv(x)", unit()),
		unary("special_erfcx", aten.SpecialErfcx, "torch.special.erfcx(x)", x()),
		unary("lgamma", aten.Lgamma, "torch.lgamma(x)", pos()),
		unary("digamma", aten.Digamma, "torch.digamma(x)", pos()),
		unary("polygamma", func(a *bridge.Tensor) *bridge.Tensor { return aten.Polygamma(2, a) }, "torch.polygamma(2, x)", pos()),
		unary("mvlgamma", func(a *bridge.Tensor) *bridge.Tensor { return aten.Mvlgamma(a, 3) }, "torch.mvlgamma(x, 3)", uni(1.5, 4, 3, 4)),
		unary("i0", aten.I0, "torch.i0(x)", x()),
		unary("sinc", aten.Sinc, "torch.sinc(x)", x()),
		unary("deg2rad", aten.Deg2rad, "torch.deg2rad(x)", wide()),
		unary("rad2deg", aten.Rad2deg, "torch.rad2deg(x)", x()),
		unary("floor", aten.Floor, "torch.floor(x)", wide()),
		unary("ceil", aten.Ceil, "torch.ceil(x)", wide()),
		unary("round", aten.Round, "torch.round(x)", f32([]float32{0.5, 1.5, 2.5, -0.5, -1.5, 0.49, 2.51, -3.7}, 2, 4)),
		unary("round_decimals", func(a *bridge.Tensor) *bridge.Tensor { return aten.RoundDecimals(a, 2) }, "torch.round(x, decimals=2)", wide()),
		unary("trunc", aten.Trunc, "torch.trunc(x)", wide()),
		unary("frac", aten.Frac, "torch.frac(x)", wide()),
		unary("sign", aten.Sign, "torch.sign(x)", x()),
		unary("sgn", aten.Sgn, "torch.sgn(x)", x()),
		unaryNG("signbit", aten.Signbit, "torch.signbit(x)", special),
		unaryNG("isnan", aten.Isnan, "torch.isnan(x)", special),
		unaryNG("isinf", aten.Isinf, "torch.isinf(x)", special),
		unaryNG("isfinite", aten.Isfinite, "torch.isfinite(x)", special),
		unaryNG("nan_to_num", func(a *bridge.Tensor) *bridge.Tensor { return aten.NanToNum(a, aten.F(7), nil, aten.F(-9)) },
			"torch.nan_to_num(x, nan=7.0, neginf=-9.0)", special),
		{name: "frexp_pair", in: M{"x": wide()}, py: "torch.frexp(x)", run: func(v M) L { m, e := aten.Frexp(v["x"]); return L{m, e} }},
		{name: "clamp_scalars", in: M{"x": x()}, grad: []string{"x"}, py: "torch.clamp(x, -0.5, 0.7)",
			run: func(v M) L { return L{aten.Clamp(v["x"], aten.S(fs(-0.5)), aten.S(fs(0.7)))} }},
		{name: "clamp_max_only", in: M{"x": x()}, grad: []string{"x"}, py: "torch.clamp(x, max=0.25)",
			run: func(v M) L { return L{aten.Clamp(v["x"], nil, aten.S(fs(0.25)))} }},
		{name: "clamp_int_tensor", in: M{"x": ri(-10, 10, 3, 4)}, py: "torch.clamp(x, -3, 4)",
			run: func(v M) L { return L{aten.Clamp(v["x"], aten.S(is(-3)), aten.S(is(4)))} }},
		{name: "clamp_tensor", in: M{"x": x(), "lo": rn(3, 4).SubScalar(1), "hi": rn(1, 4).AddScalar(1)}, grad: []string{"x", "lo", "hi"},
			py: "torch.clamp(x, lo, hi)", run: func(v M) L { return L{aten.ClampTensor(v["x"], v["lo"], v["hi"])} }},
		{name: "clamp_min", in: M{"x": x()}, grad: []string{"x"}, py: "torch.clamp_min(x, 0.1)",
			run: func(v M) L { return L{aten.ClampMin(v["x"], fs(0.1))} }},
		{name: "clamp_max", in: M{"x": x()}, grad: []string{"x"}, py: "torch.clamp_max(x, 0.1)",
			run: func(v M) L { return L{aten.ClampMax(v["x"], fs(0.1))} }},
		{name: "clip", in: M{"x": x()}, grad: []string{"x"}, py: "torch.clip(x, min=-0.2)",
			run: func(v M) L { return L{aten.Clip(v["x"], aten.S(fs(-0.2)), nil)} }},
		{name: "clamp_inplace", in: M{"x": x()}, py: "x.clamp_(-0.3, 0.3)",
			run: func(v M) L { return L{aten.Clamp_(v["x"], aten.S(fs(-0.3)), aten.S(fs(0.3)))} }},
		{name: "sin_inplace", in: M{"x": x()}, py: "x.sin_()", run: func(v M) L { return L{aten.Sin_(v["x"])} }},
		{name: "sin_out", in: M{"x": x()}, py: "torch.sin(x, out=torch.empty(0))",
			run: func(v M) L { return L{aten.SinOut(v["x"], bridge.Empty(bridge.Shape{0}))} }},

		binary("add", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.Add(a, b, fs(2.5)) }, "torch.add(x, y, alpha=2.5)", x(), rn(4)),
		binary("sub", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.Sub(a, b, is(3)) }, "torch.sub(x, y, alpha=3)", x(), x()),
		binary("rsub", func(a, b *bridge.Tensor) *bridge.Tensor { return aten.Rsub(a, b, fs(0.5)) }, "torch.rsub(x, y, alpha=0.5)", x(), x()),
		binary("mul", aten.Mul, "torch.mul(x, y)", x(), rn(3, 1)),
		binary("div", aten.Div, "torch.div(x, y)", x(), pos()),
		binary("atan2", aten.Atan2, "torch.atan2(x, y)", x(), x()),
		binary("maximum", aten.Maximum, "torch.maximum(x, y)", x(), x()),
		binary("minimum", aten.Minimum, "torch.minimum(x, y)", x(), x()),
		binary("fmax", aten.Fmax, "torch.fmax(x, y)", x(), x()),
		binary("fmin", aten.Fmin, "torch.fmin(x, y)", x(), x()),
		binary("hypot", aten.Hypot, "torch.hypot(x, y)", x(), x()),
		binary("copysign", aten.Copysign, "torch.copysign(x, y)", x(), x()),
		binary("xlogy", aten.Xlogy, "torch.xlogy(x, y)", x(), pos()),
		binary("special_xlog1py", aten.SpecialXlog1py, "torch.special.xlog1py(x, y)", x(), pos()),
		binary("logaddexp", aten.Logaddexp, "torch.logaddexp(x, y)", x(), x()),
		binary("logaddexp2", aten.Logaddexp2, "torch.logaddexp2(x, y)", x(), x()),
		binary("pow_tensor_tensor", aten.PowTensorTensor, "torch.pow(x, y)", pos(), x()),
		binary("float_power", aten.FloatPowerTensorTensor, "torch.float_power(x, y)", pos(), x()),
		binary("remainder", aten.Remainder, "torch.remainder(x, y)", wide(), pos()),
		binary("fmod", aten.Fmod, "torch.fmod(x, y)", wide(), pos()),
		binaryNG("floor_divide", aten.FloorDivide, "torch.floor_divide(x, y)", wide(), pos()),
		binaryNG("nextafter", aten.Nextafter, "torch.nextafter(x, y)", x(), x()),
		binaryNG("heaviside", aten.Heaviside, "torch.heaviside(x, y)", f32([]float32{-1, 0, 2, 0}, 4), f32([]float32{0.5, 0.25, 0.5, 0.75}, 4)),
		{name: "div_floor", in: M{"x": wide(), "y": pos()}, py: "torch.div(x, y, rounding_mode='floor')",
			run: func(v M) L { return L{aten.DivTensorMode(v["x"], v["y"], aten.Str("floor"))} }},
		{name: "div_trunc_int", in: M{"x": ri(-20, 20, 3, 4), "y": ri(1, 5, 3, 4)}, py: "torch.div(x, y, rounding_mode='trunc')",
			run: func(v M) L { return L{aten.DivTensorMode(v["x"], v["y"], aten.Str("trunc"))} }},
		{name: "div_true_int", in: M{"x": ri(-20, 20, 3, 4), "y": ri(1, 5, 3, 4)}, py: "torch.div(x, y)",
			run: func(v M) L { return L{aten.DivTensorMode(v["x"], v["y"], nil)} }},
		{name: "div_scalar", in: M{"x": x()}, grad: []string{"x"}, py: "torch.div(x, 3)",
			run: func(v M) L { return L{aten.DivScalar(v["x"], is(3))} }},
		{name: "add_scalar_int", in: M{"x": ri(0, 9, 5)}, py: "torch.add(x, 4, alpha=2)",
			run: func(v M) L { return L{aten.AddScalar(v["x"], is(4), is(2))} }},
		{name: "add_scalar_float_promotes", in: M{"x": ri(0, 9, 5)}, py: "torch.add(x, 0.5)",
			run: func(v M) L { return L{aten.AddScalar(v["x"], fs(0.5), is(1))} }},
		{name: "add_int_float_promotes", in: M{"x": ri(0, 9, 5), "y": rn(5)}, py: "torch.add(x, y)",
			run: func(v M) L { return L{aten.Add(v["x"], v["y"], is(1))} }},
		{name: "add_bool_scalar", in: M{"x": mask(5)}, py: "torch.add(x, True)",
			run: func(v M) L { return L{aten.AddScalar(v["x"], aten.BoolScalar(true), is(1))} }},
		{name: "sub_scalar", in: M{"x": x()}, grad: []string{"x"}, py: "torch.sub(x, 1.5, alpha=2)",
			run: func(v M) L { return L{aten.SubScalar(v["x"], fs(1.5), is(2))} }},
		{name: "mul_scalar", in: M{"x": x()}, grad: []string{"x"}, py: "torch.mul(x, -1.25)",
			run: func(v M) L { return L{aten.MulScalar(v["x"], fs(-1.25))} }},
		{name: "pow_tensor_scalar", in: M{"x": x()}, grad: []string{"x"}, py: "torch.pow(x, 3)",
			run: func(v M) L { return L{aten.PowTensorScalar(v["x"], is(3))} }},
		{name: "pow_scalar", in: M{"x": x()}, grad: []string{"x"}, py: "torch.pow(2.5, x)",
			run: func(v M) L { return L{aten.PowScalar(fs(2.5), v["x"])} }},
		{name: "remainder_scalar", in: M{"x": ri(-20, 20, 6)}, py: "torch.remainder(x, 7)",
			run: func(v M) L { return L{aten.RemainderScalar(v["x"], is(7))} }},
		{name: "xlogy_scalar_other", in: M{"x": x()}, grad: []string{"x"}, py: "torch.xlogy(x, 3.0)",
			run: func(v M) L { return L{aten.XlogyScalarOther(v["x"], fs(3))} }},
		{name: "add_inplace", in: M{"x": x(), "y": x()}, py: "x.add_(y, alpha=-2)",
			run: func(v M) L { return L{aten.Add_(v["x"], v["y"], is(-2))} }},
		{name: "mul_scalar_inplace", in: M{"x": x()}, py: "x.mul_(0.5)",
			run: func(v M) L { return L{aten.MulScalar_(v["x"], fs(0.5))} }},
		{name: "add_out", in: M{"x": x(), "y": x()}, py: "torch.add(x, y, alpha=2, out=torch.empty(3, 4))",
			run: func(v M) L { return L{aten.AddOut(v["x"], v["y"], is(2), bridge.Empty(bridge.Shape{3, 4}))} }},
		{name: "addcmul", in: M{"x": x(), "a": x(), "b": x()}, grad: []string{"x", "a", "b"}, py: "torch.addcmul(x, a, b, value=0.5)",
			run: func(v M) L { return L{aten.Addcmul(v["x"], v["a"], v["b"], fs(0.5))} }},
		{name: "addcdiv", in: M{"x": x(), "a": x(), "b": pos()}, grad: []string{"x", "a", "b"}, py: "torch.addcdiv(x, a, b, value=-2)",
			run: func(v M) L { return L{aten.Addcdiv(v["x"], v["a"], v["b"], is(-2))} }},
		{name: "lerp_tensor", in: M{"x": x(), "y": x(), "w": uni(0, 1, 3, 4)}, grad: []string{"x", "y", "w"}, py: "torch.lerp(x, y, w)",
			run: func(v M) L { return L{aten.Lerp(v["x"], v["y"], v["w"])} }},
		{name: "lerp_scalar", in: M{"x": x(), "y": x()}, grad: []string{"x", "y"}, py: "torch.lerp(x, y, 0.3)",
			run: func(v M) L { return L{aten.LerpScalar(v["x"], v["y"], fs(0.3))} }},
		{name: "where_self", in: M{"c": mask(3, 4), "x": x(), "y": rn(4)}, grad: []string{"x", "y"}, py: "torch.where(c, x, y)",
			run: func(v M) L { return L{aten.WhereSelf(v["c"], v["x"], v["y"])} }},
		{name: "where_scalar_other", in: M{"c": mask(3, 4), "x": x()}, grad: []string{"x"}, py: "torch.where(c, x, 0.5)",
			run: func(v M) L { return L{aten.WhereScalarOther(v["c"], v["x"], fs(0.5))} }},
		{name: "where_scalars", in: M{"c": mask(3, 4)}, py: "torch.where(c, 1.0, -1.0)",
			run: func(v M) L { return L{aten.WhereScalar(v["c"], fs(1), fs(-1))} }},
		{name: "where_condition", in: M{"c": mask(3, 4)}, py: "torch.where(c)",
			run: func(v M) L { return aten.Where(v["c"]) }},
		binaryNG("eq", aten.Eq, "torch.eq(x, y)", ri(0, 3, 6), ri(0, 3, 6)),
		binaryNG("ne", aten.Ne, "torch.ne(x, y)", ri(0, 3, 6), ri(0, 3, 6)),
		binaryNG("lt", aten.Lt, "torch.lt(x, y)", x(), x()),
		binaryNG("le", aten.Le, "torch.le(x, y)", ri(0, 3, 6), ri(0, 3, 6)),
		binaryNG("gt", aten.Gt, "torch.gt(x, y)", x(), x()),
		binaryNG("ge", aten.Ge, "torch.ge(x, y)", ri(0, 3, 6), ri(0, 3, 6)),
		unaryNG("eq_scalar", func(a *bridge.Tensor) *bridge.Tensor { return aten.EqScalar(a, is(1)) }, "torch.eq(x, 1)", ri(0, 3, 6)),
		unaryNG("gt_scalar", func(a *bridge.Tensor) *bridge.Tensor { return aten.GtScalar(a, fs(0.25)) }, "torch.gt(x, 0.25)", x()),
		{name: "isclose", in: M{"x": f32([]float32{1, 1.00001, float32(nan()), 2}, 4), "y": f32([]float32{1, 1, float32(nan()), 2.1}, 4)},
			py:  "torch.isclose(x, y, rtol=1e-4, atol=0, equal_nan=True)",
			run: func(v M) L { return L{aten.Isclose(v["x"], v["y"], 1e-4, 0, true)} }},
		binaryNG("logical_and", aten.LogicalAnd, "torch.logical_and(x, y)", mask(6), mask(6)),
		binaryNG("logical_or", aten.LogicalOr, "torch.logical_or(x, y)", mask(6), ri(0, 2, 6)),
		binaryNG("logical_xor", aten.LogicalXor, "torch.logical_xor(x, y)", mask(6), mask(6)),
		unaryNG("logical_not", aten.LogicalNot, "torch.logical_not(x)", ri(0, 3, 6)),
		binaryNG("bitwise_and", aten.BitwiseAnd, "torch.bitwise_and(x, y)", ri(0, 256, 6), ri(0, 256, 6)),
		binaryNG("bitwise_or", aten.BitwiseOr, "torch.bitwise_or(x, y)", ri(0, 256, 6), ri(0, 256, 6)),
		binaryNG("bitwise_xor", aten.BitwiseXor, "torch.bitwise_xor(x, y)", ri(0, 256, 6), ri(0, 256, 6)),
		unaryNG("bitwise_not", aten.BitwiseNot, "torch.bitwise_not(x)", ri(-100, 100, 6)),
		unaryNG("bitwise_and_scalar", func(a *bridge.Tensor) *bridge.Tensor { return aten.BitwiseAndScalar(a, is(0x0f)) }, "torch.bitwise_and(x, 15)", ri(0, 256, 6)),
	}
}
