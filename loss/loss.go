// Package loss holds a training loop's loss configuration — the terms of loss = Σ wᵢ·termᵢ, each
// with a live weight, an on/off toggle and an optional ramp — so that hotcb's `loss` module can
// change it while the run trains, as hotcb's hotloss does. It never touches autograd: the loop
// computes its terms and asks the Loss how to weigh them.
//
//	l := loss.New(loss.Term{Name: "ce", Weight: 1}, loss.Term{Name: "smooth", Weight: 0.1, Disabled: true})
//	l.SetTotalSteps(total)       // for ramps given as a fraction of the run
//	k.RegisterLoss("main", l)    // kernel: `hotcb loss set_params smooth_w=0.2 terms.smooth=true`
//	...
//	total := loss.Combine(l, step, map[string]*bridge.Tensor{"ce": ce, "smooth": sm})
//
// A term's effective weight at a step is 0 while it is off, else its ramp's value when it has
// one, else its weight (see Ramp for the ramp shapes). SetParams takes hotcb's set_params keys.
// The package is pure Go; every method is safe to call from any goroutine.
package loss

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Term declares one term of the loss.
type Term struct {
	// Name is the term's name in set_params keys ("ce": ce_w=0.5, terms.ce=false, ramps.ce=...).
	Name string
	// Weight multiplies the term; it must be finite and >= 0.
	Weight float64
	// Disabled starts the term off (weight 0 whatever Weight says) until terms.NAME=true.
	Disabled bool
	// Ramp, when set, gives the term's weight over the steps instead of Weight. A zero Ramp.End
	// means Weight.
	Ramp *Ramp
}

// State is a Loss's configuration: hotcb's three maps. Weights and Terms hold every declared
// term; Ramps only those that have one.
type State struct {
	Weights map[string]float64 `json:"weights"`
	Terms   map[string]bool    `json:"terms"`
	Ramps   map[string]Ramp    `json:"ramps,omitempty"`
}

func (s State) clone() State {
	c := State{Weights: make(map[string]float64, len(s.Weights)), Terms: make(map[string]bool, len(s.Terms)),
		Ramps: make(map[string]Ramp, len(s.Ramps))}
	for k, v := range s.Weights {
		c.Weights[k] = v
	}
	for k, v := range s.Terms {
		c.Terms[k] = v
	}
	for k, v := range s.Ramps {
		c.Ramps[k] = v
	}
	return c
}

// Loss is a loss configuration that the control plane changes and the training loop reads.
type Loss struct {
	names []string // declared order
	known map[string]bool

	mu    sync.RWMutex
	st    State
	total int64

	last atomic.Int64 // the step of the latest Weight, Weights, Active or Combine call
}

// New declares the terms, in the order Combine sums them. It panics on a declaration error (an
// empty or repeated name, a weight that is negative or not finite, a bad ramp): the terms are
// part of the program.
func New(terms ...Term) *Loss {
	l := &Loss{known: map[string]bool{}, st: State{Weights: map[string]float64{}, Terms: map[string]bool{},
		Ramps: map[string]Ramp{}}}
	for _, t := range terms {
		switch {
		case t.Name == "":
			panic("loss.New: a term has no name")
		case l.known[t.Name]:
			panic(fmt.Sprintf("loss.New: term %q is declared twice", t.Name))
		}
		if err := checkWeight(t.Weight); err != nil {
			panic(fmt.Sprintf("loss.New: term %q: weight %v", t.Name, err))
		}
		l.names = append(l.names, t.Name)
		l.known[t.Name] = true
		l.st.Weights[t.Name] = t.Weight
		l.st.Terms[t.Name] = !t.Disabled
		if t.Ramp != nil {
			r := *t.Ramp
			if r.End == 0 {
				r.End = t.Weight
			}
			if r.Type == "" {
				r.Type = RampLinear
			}
			if err := r.check(); err != nil {
				panic(fmt.Sprintf("loss.New: term %q: ramp: %v", t.Name, err))
			}
			l.st.Ramps[t.Name] = r
		}
	}
	return l
}

// checkWeight says what is wrong with a weight: it must be finite and >= 0 (a negative weight
// turns minimising into maximising; negate the term instead).
func checkWeight(w float64) error {
	switch {
	case math.IsNaN(w) || math.IsInf(w, 0):
		return fmt.Errorf("must be a finite number, got %v", w)
	case w < 0:
		return fmt.Errorf("must be >= 0, got %v (negate the term itself to maximise it)", w)
	}
	return nil
}

// Names lists the declared terms, in declaration order.
func (l *Loss) Names() []string { return append([]string(nil), l.names...) }

// SetTotalSteps tells the Loss how many steps the run has, which ramps given with warmup_frac
// need. Until it is called (or with n <= 0) such a ramp declared in New counts as finished, and
// set_params refuses new ones.
func (l *Loss) SetTotalSteps(n int64) {
	l.mu.Lock()
	l.total = max(n, 0)
	l.mu.Unlock()
}

// TotalSteps is what SetTotalSteps set (0: unknown).
func (l *Loss) TotalSteps() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.total
}

// State returns a copy of the configuration.
func (l *Loss) State() State {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st.clone()
}

// Weight is term name's effective weight at step: 0 while it is off, else its ramp's value at
// step if it has a ramp, else its weight. It panics for a name New did not declare.
func (l *Loss) Weight(name string, step int64) float64 {
	l.mustKnow("Weight", name)
	l.last.Store(step)
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.weight(name, step)
}

func (l *Loss) weight(name string, step int64) float64 {
	if !l.st.Terms[name] {
		return 0
	}
	if r, ok := l.st.Ramps[name]; ok {
		return r.At(step, l.total)
	}
	return l.st.Weights[name]
}

// Active says whether term name counts at step (on, with a non-zero effective weight): a loop
// can skip computing a term that does not.
func (l *Loss) Active(name string, step int64) bool { return l.Weight(name, step) != 0 }

// Weights are the effective weights of every term at step.
func (l *Loss) Weights(step int64) map[string]float64 {
	l.last.Store(step)
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make(map[string]float64, len(l.names))
	for _, n := range l.names {
		out[n] = l.weight(n, step)
	}
	return out
}

// LastStep is the step of the latest Weight, Weights, Active or Combine call (0 before any): the
// step a status report shows the effective weights at.
func (l *Loss) LastStep() int64 { return l.last.Load() }

func (l *Loss) mustKnow(fn, name string) {
	if !l.known[name] {
		panic(fmt.Sprintf("loss.%s: %v", fn, l.unknown(name)))
	}
}

// unknown is the error for a term name New did not declare.
func (l *Loss) unknown(name string) error {
	names := append([]string(nil), l.names...)
	sort.Strings(names)
	return fmt.Errorf("unknown term %q (declared: %s)", name, strings.Join(names, ", "))
}
