// Package callbacks holds example go_file callbacks: Go source that a running training loads
// and reloads without a restart. This file also compiles as an ordinary package, so `go vet`
// checks it.
//
// Load it into a running `make demo`:
//
//	echo '{"op":"load","id":"gradnorm","target":{"kind":"go_file","path":"examples/callbacks/grad_norm.go","symbol":"GradNorm"},"init":{"every":10}}' >> runs/demo/hotcb.commands.jsonl
//
// or, with the hotcb CLI: hotcb --dir runs/demo cb load gradnorm --file examples/callbacks/grad_norm.go --symbol GradNorm --init every=10
package callbacks

import (
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// GradNorm logs the L2 norm of the gradient of the model's first parameter (the first layer's
// weight) every N steps, after the backward pass.
type GradNorm struct {
	Name  string  `hotcb:"id"`
	Every int     `hotcb:"every,min=1"`
	last  float64 `hotcb:"-"` // the interpreter exposes unexported fields (as Xlast): keep it out of params
}

// ID is the callback's id.
func (g *GradNorm) ID() string { return g.Name }

// Handle reads the gradient at backward_end.
func (g *GradNorm) Handle(event string, env *torchenv.Env) error {
	if event != torchenv.BackwardEnd || env.Model == nil || g.Every < 1 || env.Step%int64(g.Every) != 0 {
		return nil
	}
	ps := nn.NamedParameters(env.Model)
	if len(ps) == 0 {
		return nil
	}
	grad := ps[0].Tensor.Grad()
	if grad == nil {
		return nil
	}
	g.last = grad.Norm(2).Item()
	env.Logf("[%s] step %d |grad %s|_2 = %.5f", g.Name, env.Step, ps[0].Name, g.last)
	return nil
}

// SetParams accepts every.
func (g *GradNorm) SetParams(p map[string]any) error { return params.Decode(p, g) }

// Last is the last norm computed.
func (g *GradNorm) Last() float64 { return g.last }
