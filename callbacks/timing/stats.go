package timing

import (
	"math"
	"slices"
)

// ring keeps the last len(buf) durations (nanoseconds) of one series. push is the hot path: one
// store and two increments, no allocation.
type ring struct {
	buf   []int64
	next  int   // where the next value goes
	n     int   // values held, at most len(buf)
	total int64 // values pushed since the series began
}

func newRing(window int) *ring { return &ring{buf: make([]int64, window)} }

func (r *ring) push(v int64) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next = 0
	}
	if r.n < len(r.buf) {
		r.n++
	}
	r.total++
}

// values appends the held values, oldest first, to dst.
func (r *ring) values(dst []int64) []int64 {
	start := r.next - r.n
	if start < 0 {
		start += len(r.buf)
	}
	for i := range r.n {
		dst = append(dst, r.buf[(start+i)%len(r.buf)])
	}
	return dst
}

// resize keeps the newest values that fit in a window of the new size.
func (r *ring) resize(window int) {
	if window == len(r.buf) {
		return
	}
	vals := r.values(nil)
	if len(vals) > window {
		vals = vals[len(vals)-window:]
	}
	total := r.total
	*r = ring{buf: make([]int64, window), total: total}
	for _, v := range vals {
		r.buf[r.next] = v
		r.next = (r.next + 1) % window
		r.n++
	}
}

// Stats summarise a window of durations, in milliseconds.
type Stats struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	Max  float64 `json:"max"`
}

// summarize computes Stats of durations in nanoseconds. Percentiles interpolate linearly
// between the closest ranks, as numpy.percentile does by default, so hotcb's Python numbers and
// these agree. vals is sorted in place.
func summarize(vals []int64) Stats {
	if len(vals) == 0 {
		return Stats{}
	}
	slices.Sort(vals)
	var sum float64
	for _, v := range vals {
		sum += float64(v)
	}
	return Stats{
		N:    len(vals),
		Mean: ms(sum / float64(len(vals))),
		P50:  ms(percentile(vals, 50)),
		P95:  ms(percentile(vals, 95)),
		Max:  ms(float64(vals[len(vals)-1])),
	}
}

// percentile of sorted values, with linear interpolation between ranks.
func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 1 {
		return float64(sorted[0])
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return float64(sorted[len(sorted)-1])
	}
	frac := pos - float64(lo)
	return float64(sorted[lo]) + frac*float64(sorted[lo+1]-sorted[lo])
}

// ms converts nanoseconds to milliseconds, rounded to the microsecond for readable JSON.
func ms(ns float64) float64 { return math.Round(ns/1e3) / 1e3 }

// history is the step time over the whole run for the chart, in bounded memory: when it holds
// maxPoints it halves itself by averaging neighbours and from then on averages twice as many
// steps per point.
type history struct {
	first  int64 // env.Step of the first value
	pts    []float32
	stride int // steps per point
	acc    float64
	accN   int
}

const maxPoints = 4096

func (h *history) push(step int64, ms float64) {
	if h.stride == 0 {
		h.stride, h.first = 1, step
		h.pts = make([]float32, 0, maxPoints)
	}
	h.acc += ms
	h.accN++
	if h.accN < h.stride {
		return
	}
	h.pts = append(h.pts, float32(h.acc/float64(h.accN)))
	h.acc, h.accN = 0, 0
	if len(h.pts) == maxPoints {
		for i := range maxPoints / 2 {
			h.pts[i] = (h.pts[2*i] + h.pts[2*i+1]) / 2
		}
		h.pts = h.pts[:maxPoints/2]
		h.stride *= 2
	}
}

// points returns (step, ms) pairs, each at the middle of the steps it averages.
func (h *history) points() (xs, ys []float64) {
	for i, p := range h.pts {
		xs = append(xs, float64(h.first)+float64(i*h.stride)+float64(h.stride-1)/2)
		ys = append(ys, float64(p))
	}
	return xs, ys
}
