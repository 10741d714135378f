package nn

import (
	"fmt"
	"math"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

// The Init functions are torch.nn.init: each fills a tensor in place, with autograd off (so they
// work on parameters), and returns it. They compute what PyTorch's do with the same ATen
// sampling ops from the default generator, so after the same seed (bridge.ManualSeed(s) here,
// torch.manual_seed(s) there) they give the same values — bit for bit on CPU for every one of
// them (TestInitMatchesPyTorch checks it).

func initFail(op, format string, args ...any) {
	panic(&bridge.Error{Op: "nn.init." + op, Msg: fmt.Sprintf(format, args...)})
}

// FanInOut is PyTorch's fan in and fan out of a weight of 2 or more dims: size(1) and size(0),
// each times the product of the remaining (receptive field) dims.
func FanInOut(t *bridge.Tensor) (fanIn, fanOut int64) {
	s := t.Shape()
	if len(s) < 2 {
		initFail("fan", "fan in and fan out can not be computed for a tensor of shape %v (fewer than 2 dims)", s)
	}
	receptive := int64(1)
	for _, d := range s[2:] {
		receptive *= d
	}
	return s[1] * receptive, s[0] * receptive
}

// CalculateGain is torch.nn.init.calculate_gain: the recommended gain for a nonlinearity —
// "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d/2d/3d", "sigmoid": 1; "tanh": 5/3;
// "relu": √2; "leaky_relu": √(2/(1+slope²)), slope param[0] or 0.01; "selu": 3/4.
func CalculateGain(nonlinearity string, param ...float64) float64 {
	switch nonlinearity {
	case "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid":
		return 1
	case "tanh":
		return 5.0 / 3
	case "relu":
		return math.Sqrt(2.0)
	case "leaky_relu":
		slope := 0.01
		if len(param) > 0 {
			slope = param[0]
		}
		return math.Sqrt(2.0 / (1 + slope*slope))
	case "selu":
		return 3.0 / 4
	}
	initFail("calculate_gain", "unsupported nonlinearity %q", nonlinearity)
	return 0
}

func initNoGrad(f func()) { bridge.NoGrad(f) }

// InitUniform fills t from U(a, b).
func InitUniform(t *bridge.Tensor, a, b float64) *bridge.Tensor {
	initNoGrad(func() { aten.Uniform_(t, a, b) })
	return t
}

// InitNormal fills t from N(mean, std²).
func InitNormal(t *bridge.Tensor, mean, std float64) *bridge.Tensor {
	initNoGrad(func() { aten.Normal_(t, mean, std) })
	return t
}

// InitConstant fills t with v.
func InitConstant(t *bridge.Tensor, v float64) *bridge.Tensor {
	initNoGrad(func() { aten.FillScalar_(t, aten.FloatScalar(v)) })
	return t
}

// InitOnes fills t with ones.
func InitOnes(t *bridge.Tensor) *bridge.Tensor { return InitConstant(t, 1) }

// InitZeros fills t with zeros.
func InitZeros(t *bridge.Tensor) *bridge.Tensor {
	initNoGrad(func() { aten.Zero_(t) })
	return t
}

// InitXavierUniform (Glorot) fills t from U(-a, a), a = gain·√(6/(fan_in+fan_out)).
func InitXavierUniform(t *bridge.Tensor, gain float64) *bridge.Tensor {
	in, out := FanInOut(t)
	std := gain * math.Sqrt(2.0/float64(in+out))
	a := math.Sqrt(3.0) * std
	return InitUniform(t, -a, a)
}

// InitXavierNormal (Glorot) fills t from N(0, std²), std = gain·√(2/(fan_in+fan_out)).
func InitXavierNormal(t *bridge.Tensor, gain float64) *bridge.Tensor {
	in, out := FanInOut(t)
	std := gain * math.Sqrt(2.0/float64(in+out))
	return InitNormal(t, 0, std)
}

// Fan modes for KaimingOptions.
const (
	FanIn  = "fan_in"
	FanOut = "fan_out"
)

// KaimingOptions tune the Kaiming (He) initialisers. The zero value is PyTorch's default: a = 0,
// mode "fan_in", nonlinearity "leaky_relu" (whose gain with a = 0 is √2, that of ReLU).
type KaimingOptions struct {
	A            float64 // the negative slope of the leaky ReLU that follows (leaky_relu only)
	Mode         string  // FanIn (default) keeps the forward variance, FanOut the backward one
	Nonlinearity string  // "relu" or "leaky_relu" (default), or any CalculateGain takes
}

func kaimingStd(op string, t *bridge.Tensor, opts []KaimingOptions) float64 {
	o := firstOpt(opts)
	if o.Nonlinearity == "" {
		o.Nonlinearity = "leaky_relu"
	}
	in, out := FanInOut(t)
	fan := in
	switch o.Mode {
	case "", FanIn:
	case FanOut:
		fan = out
	default:
		initFail(op, "mode %q not supported, please use one of fan_in, fan_out", o.Mode)
	}
	return CalculateGain(o.Nonlinearity, o.A) / math.Sqrt(float64(fan))
}

// InitKaimingUniform (He) fills t from U(-bound, bound), bound = gain·√(3/fan).
func InitKaimingUniform(t *bridge.Tensor, opts ...KaimingOptions) *bridge.Tensor {
	if t.Numel() == 0 {
		return t
	}
	bound := math.Sqrt(3.0) * kaimingStd("kaiming_uniform", t, opts)
	return InitUniform(t, -bound, bound)
}

// InitKaimingNormal (He) fills t from N(0, std²), std = gain/√fan.
func InitKaimingNormal(t *bridge.Tensor, opts ...KaimingOptions) *bridge.Tensor {
	if t.Numel() == 0 {
		return t
	}
	return InitNormal(t, 0, kaimingStd("kaiming_normal", t, opts))
}

// InitTruncNormal fills t from N(mean, std²) truncated to [a, b], by PyTorch's inverse-CDF
// method (uniform, then erfinv).
func InitTruncNormal(t *bridge.Tensor, mean, std, a, b float64) *bridge.Tensor {
	cdf := func(x float64) float64 { return (1 + math.Erf(x/math.Sqrt(2))) / 2 }
	l, u := cdf((a-mean)/std), cdf((b-mean)/std)
	initNoGrad(func() {
		aten.Uniform_(t, 2*l-1, 2*u-1)
		aten.Erfinv_(t)
		aten.MulScalar_(t, aten.FloatScalar(std*math.Sqrt(2)))
		aten.AddScalar_(t, aten.FloatScalar(mean), aten.IntScalar(1))
		aten.Clamp_(t, aten.S(aten.FloatScalar(a)), aten.S(aten.FloatScalar(b)))
	})
	return t
}

// InitOrthogonal fills t (2 or more dims, viewed as size(0) rows) with a (semi-)orthogonal matrix
// times gain: the Q of a QR decomposition of a N(0, 1) matrix, its signs fixed by R's diagonal.
func InitOrthogonal(t *bridge.Tensor, gain float64) *bridge.Tensor {
	s := t.Shape()
	if len(s) < 2 {
		initFail("orthogonal", "only tensors with 2 or more dimensions are supported, got shape %v", s)
	}
	if t.Numel() == 0 {
		return t
	}
	rows := s[0]
	cols := t.Numel() / rows
	initNoGrad(func() {
		dt, dev := t.DType(), t.Device()
		flat := aten.Normal_(aten.Empty([]int64{rows, cols}, aten.Options{DType: &dt, Device: &dev}, nil), 0, 1)
		if rows < cols {
			flat = aten.T(flat)
		}
		q, r := aten.LinalgQr(flat, "reduced")
		q = aten.Mul(q, aten.Sign(aten.Diag(r, 0)))
		if rows < cols {
			q = aten.T(q)
		}
		aten.Copy_(aten.View(t, q.Shape()), q, false)
		aten.MulScalar_(t, aten.FloatScalar(gain))
	})
	return t
}

// weightAndBias makes a Linear's or a convolution's weight of the given shape and, unless noBias,
// its bias [out], initialises them as PyTorch's reset_parameters does — the weight from
// kaiming_uniform_(a=√5), U(±1/√fan_in), then the bias from U(±1/√fan_in) — and registers them
// as n's "weight" and "bias".
func weightAndBias(n *Node, shape []int64, out int64, noBias bool) (weight, bias *bridge.Tensor) {
	weight = aten.Empty(shape, aten.Options{}, nil)
	if !noBias {
		bias = aten.Empty([]int64{out}, aten.Options{}, nil)
	}
	InitKaimingUniform(weight, KaimingOptions{A: math.Sqrt(5)})
	if bias != nil {
		in, _ := FanInOut(weight)
		bound := 0.0
		if in > 0 {
			bound = 1 / math.Sqrt(float64(in))
		}
		InitUniform(bias, -bound, bound)
	}
	n.Param("weight", weight)
	if bias != nil {
		n.Param("bias", bias)
	}
	return weight, bias
}
