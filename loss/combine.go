package loss

import "fmt"

// Tensor is what Combine needs of a loss value: *bridge.Tensor has both methods.
type Tensor[T any] interface {
	MulScalar(v float64) T
	Add(o T) T
}

// Combine is the loss at step: Σ wᵢ·termsᵢ over the declared terms, in declaration order, with
// each term's effective weight (Weight). A term whose weight is 0 — off, or weighted 0 — is left
// out and may be absent from terms (check Active before computing it); a weight of 1 uses the
// term as it is. When every term is left out the result is 0 times the first term given, so that
// a backward pass still runs (and leaves zero gradients). It panics when terms names a term New
// did not declare, lacks a term that counts, or gives none at all.
func Combine[T Tensor[T]](l *Loss, step int64, terms map[string]T) T {
	for name := range terms {
		l.mustKnow("Combine", name)
	}
	ws := l.Weights(step)
	var sum, first T
	found, given := false, false
	for _, name := range l.names {
		t, ok := terms[name]
		if ok && !given {
			first, given = t, true
		}
		w := ws[name]
		if w == 0 {
			continue
		}
		if !ok {
			panic(fmt.Sprintf("loss.Combine: term %q has weight %g at step %d but terms has no value for it", name, w, step))
		}
		if w != 1 {
			t = t.MulScalar(w)
		}
		if !found {
			sum, found = t, true
		} else {
			sum = sum.Add(t)
		}
	}
	switch {
	case found:
		return sum
	case given:
		return first.MulScalar(0)
	}
	panic(fmt.Sprintf("loss.Combine: no terms given at step %d", step))
}
