package workload

import "github.com/hotcb/hotcb/bridge"

// MLPConfig sizes a two-layer perceptron and its fixed batch.
type MLPConfig struct {
	In, Hidden, Out int64
	Batch           int64
	LR              float64 // SGD learning rate
}

// MLP is Linear(In, Hidden) → ReLU → Linear(Hidden, Out) trained with cross-entropy and plain
// SGD on one fixed random batch. It is the loop a bridge user writes without bridge/nn, and
// the twin of MLP in bench/cpp/ref.cpp.
type MLP struct {
	X, Y           *bridge.Tensor // inputs [Batch, In], int64 classes [Batch]
	W1, B1, W2, B2 *bridge.Tensor
	LR             float64
	// Free releases the loss of each step at once instead of leaving it to the garbage collector
	// (Step then returns nil).
	Free bool
	// FreeAll releases every tensor a step creates (pre-activation, activation, logits, loss)
	// once the update is done, as a C++ scope does: the Go loop without garbage-collected
	// handles. Step then returns nil.
	FreeAll bool
	// Scoped runs each step inside bridge.Scope, which frees every tensor the step created when
	// it returns (and pins the goroutine to its thread meanwhile), with the update done by
	// bridge.AddGradsInPlace in one call: the step as the README recommends writing it.
	// Step then returns nil.
	Scoped bool
}

// NewMLP seeds libtorch with Seed and builds data and weights in ref.cpp's order: weights are
// standard normal times InitScale, biases zero.
func NewMLP(c MLPConfig) *MLP {
	bridge.ManualSeed(Seed)
	m := &MLP{LR: c.LR}
	m.X = bridge.Randn(bridge.Shape{c.Batch, c.In})
	m.Y = bridge.RandInt(0, c.Out, bridge.Shape{c.Batch})
	m.W1 = bridge.Randn(bridge.Shape{c.Hidden, c.In}).MulScalar(InitScale).SetRequiresGrad(true)
	m.B1 = bridge.Zeros(bridge.Shape{c.Hidden}).SetRequiresGrad(true)
	m.W2 = bridge.Randn(bridge.Shape{c.Out, c.Hidden}).MulScalar(InitScale).SetRequiresGrad(true)
	m.B2 = bridge.Zeros(bridge.Shape{c.Out}).SetRequiresGrad(true)
	return m
}

// Params returns the trainable tensors.
func (m *MLP) Params() []*bridge.Tensor { return []*bridge.Tensor{m.W1, m.B1, m.W2, m.B2} }

// Loss runs the forward pass and returns the mean cross-entropy (a scalar tensor).
func (m *MLP) Loss() *bridge.Tensor {
	h := bridge.Linear(m.X, m.W1, m.B1).Relu()
	logits := bridge.Linear(h, m.W2, m.B2)
	return bridge.CrossEntropy(logits, m.Y)
}

// Step does one training step: forward, backward, then p -= LR*grad and drop the gradient
// (set to none) for every parameter. It returns the loss before the update.
func (m *MLP) Step() *bridge.Tensor {
	if m.FreeAll {
		m.stepFreeAll()
		return nil
	}
	if m.Scoped {
		bridge.Scope(m.stepScoped)
		return nil
	}
	loss := m.Loss()
	loss.Backward()
	bridge.NoGrad(func() {
		for _, p := range m.Params() {
			p.AddGradInPlace(-m.LR) // p -= LR*grad, then grad = None, with no Go handle on grad
		}
	})
	if m.Free {
		loss.Free()
		return nil
	}
	return loss
}

// stepFreeAll is Step freeing every intermediate tensor at the end, as C++ would.
func (m *MLP) stepFreeAll() {
	z := bridge.Linear(m.X, m.W1, m.B1)
	h := z.Relu()
	logits := bridge.Linear(h, m.W2, m.B2)
	loss := bridge.CrossEntropy(logits, m.Y)
	loss.Backward()
	bridge.NoGrad(func() {
		for _, p := range m.Params() {
			p.AddGradInPlace(-m.LR)
		}
	})
	for _, t := range []*bridge.Tensor{loss, logits, h, z} {
		t.Free()
	}
}

// stepScoped is the body of a Scoped step.
func (m *MLP) stepScoped() {
	loss := m.Loss()
	loss.Backward()
	bridge.AddGradsInPlace(m.Params(), -m.LR)
}

// Run does iters training steps.
func (m *MLP) Run(iters int) {
	for range iters {
		if l := m.Step(); l != nil {
			sink = l
		}
	}
}

// fresh builds a new MLP of the same size.
func (m *MLP) fresh() *MLP {
	s := m.X.Shape()
	return NewMLP(MLPConfig{In: s[1], Batch: s[0], Hidden: m.W1.Size(0), Out: m.W2.Size(0), LR: m.LR})
}

// Check returns the loss of a freshly built MLP of the same size.
func (m *MLP) Check() float64 { return m.fresh().Loss().Item() }

// Losses returns the losses of the first steps training steps of a fresh MLP.
func (m *MLP) Losses(steps int) []float64 { return losses(m.fresh().Step, steps) }
