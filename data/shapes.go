package data

import (
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/hotcb/hotcb/bridge"
)

// ShapeClasses are the classes Shapes can draw, in label order; ShapesOptions.Classes takes the
// first k.
var ShapeClasses = []string{"circle", "square", "triangle", "cross", "star", "line", "crescent", "arrow"}

// ShapesOptions configure Shapes. Zero values take the defaults.
type ShapesOptions struct {
	N        int     // number of images (default 10000)
	Size     int     // side in pixels, 8…256 (default 28; 32 is the other common choice)
	Channels int     // 1 (grey) or 3 (colour) (default 1)
	Classes  int     // how many of ShapeClasses, 2…8 (default 6)
	Seed     uint64  // same options and seed → identical images and labels
	Noise    float64 // std of the Gaussian pixel noise on [0, 1] intensities (default 0.05; < 0: none)
	// Norm normalises the images; nil uses the generated images' own per-channel mean and std.
	// Give a training set's Norm to a test set to put both on the same scale.
	Norm *Norm
}

const (
	defaultShapesN     = 10000
	defaultShapesSize  = 28
	defaultShapesClass = 6
	defaultShapesNoise = 0.05
)

func (o ShapesOptions) withDefaults() (ShapesOptions, error) {
	if o.N == 0 {
		o.N = defaultShapesN
	}
	if o.Size == 0 {
		o.Size = defaultShapesSize
	}
	if o.Channels == 0 {
		o.Channels = 1
	}
	if o.Classes == 0 {
		o.Classes = defaultShapesClass
	}
	switch {
	case o.Noise == 0:
		o.Noise = defaultShapesNoise
	case o.Noise < 0:
		o.Noise = 0
	}
	switch {
	case o.N < 0:
		return o, fmt.Errorf("data: shapes: N = %d, want > 0", o.N)
	case o.Size < 8 || o.Size > 256:
		return o, fmt.Errorf("data: shapes: Size = %d, want 8…256", o.Size)
	case o.Channels != 1 && o.Channels != 3:
		return o, fmt.Errorf("data: shapes: Channels = %d, want 1 or 3", o.Channels)
	case o.Classes < 2 || o.Classes > len(ShapeClasses):
		return o, fmt.Errorf("data: shapes: Classes = %d, want 2…%d", o.Classes, len(ShapeClasses))
	case math.IsNaN(o.Noise) || o.Noise > 1:
		return o, fmt.Errorf("data: shapes: Noise = %v, want ≤ 1", o.Noise)
	}
	if o.Norm != nil {
		if err := o.Norm.validate(o.Channels); err != nil {
			return o, fmt.Errorf("data: shapes: %w", err)
		}
	}
	return o, nil
}

// Shapes generates a synthetic image classification dataset: one shape per image, drawn with
// random size, position, rotation, fill or outline, colour (or grey level), a background with a
// gentle gradient, and Gaussian noise, anti-aliased. Classes are exactly balanced (N mod k
// aside) and shuffled. Generation is pure Go on all cores; the result is identical for the same
// options whatever the number of cores.
func Shapes(opts ShapesOptions) (*TensorDataset, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pix, labels, norm := generateShapes(o)
	var ds *TensorDataset
	err = bridge.Try(func() {
		ds = &TensorDataset{
			Images:  bridge.FromSlice(pix, int64(o.N), int64(o.Channels), int64(o.Size), int64(o.Size)),
			Labels:  bridge.FromSlice(labels),
			Classes: append([]string(nil), ShapeClasses[:o.Classes]...),
			Norm:    norm,
		}
	})
	return ds, err
}

// generateShapes returns normalised pixels [N,C,S,S], labels and the normalisation used.
func generateShapes(o ShapesOptions) ([]float32, []int64, Norm) {
	labels := make([]int64, o.N)
	for i := range labels {
		labels[i] = int64(i % o.Classes)
	}
	lr := newRNG(o.Seed, 0x6c6162656c73) // "labels"
	for i := len(labels) - 1; i > 0; i-- {
		j := lr.intn(i + 1)
		labels[i], labels[j] = labels[j], labels[i]
	}

	c, s := o.Channels, o.Size
	per := c * s * s
	pix := make([]float32, o.N*per)
	// Per-image channel sums, reduced in index order afterwards so that the statistics (and so
	// the normalised pixels) do not depend on how images were spread over goroutines.
	sums := make([]float64, o.N*2*c)
	parallel(o.N, func(i int, sc *scratch) {
		rng := newRNG(o.Seed, uint64(i)+1<<32)
		img := pix[i*per : (i+1)*per]
		drawShape(img, s, c, int(labels[i]), o.Noise, rng, sc)
		acc := sums[i*2*c : (i+1)*2*c]
		for ch := 0; ch < c; ch++ {
			var s1, s2 float64
			for _, v := range img[ch*s*s : (ch+1)*s*s] {
				s1 += float64(v)
				s2 += float64(v) * float64(v)
			}
			acc[2*ch], acc[2*ch+1] = s1, s2
		}
	})

	var norm Norm
	if o.Norm != nil {
		norm = Norm{Mean: append([]float32(nil), o.Norm.Mean...), Std: append([]float32(nil), o.Norm.Std...)}
	} else {
		norm = Norm{Mean: make([]float32, c), Std: make([]float32, c)}
		cnt := float64(o.N * s * s)
		for ch := 0; ch < c; ch++ {
			var s1, s2 float64
			for i := 0; i < o.N; i++ {
				s1 += sums[i*2*c+2*ch]
				s2 += sums[i*2*c+2*ch+1]
			}
			mean := s1 / cnt
			sd := math.Sqrt(max(s2/cnt-mean*mean, 0))
			if sd < 1e-6 {
				sd = 1
			}
			norm.Mean[ch], norm.Std[ch] = float32(mean), float32(sd)
		}
	}
	parallel(o.N, func(i int, _ *scratch) {
		img := pix[i*per : (i+1)*per]
		for ch := 0; ch < c; ch++ {
			m, inv := norm.Mean[ch], 1/norm.Std[ch]
			plane := img[ch*s*s : (ch+1)*s*s]
			for k, v := range plane {
				plane[k] = (v - m) * inv
			}
		}
	})
	return pix, labels, norm
}

// scratch is per-goroutine working memory.
type scratch struct {
	verts []vec
	cov   []float32
}

// parallel calls f(i) for i in [0, n) on GOMAXPROCS goroutines, in chunks.
func parallel(n int, f func(i int, sc *scratch)) {
	const chunk = 64
	workers := min(runtime.GOMAXPROCS(0), (n+chunk-1)/chunk)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			sc := &scratch{}
			for {
				lo := int(next.Add(chunk)) - chunk
				if lo >= n {
					return
				}
				for i := lo; i < min(lo+chunk, n); i++ {
					f(i, sc)
				}
			}
		})
	}
	wg.Wait()
}

// rng is a PCG stream with our own derived draws: math/rand/v2's PCG output is specified, but
// the algorithms behind its Float64, NormFloat64 and Shuffle are not promised to stay the same
// across Go releases, and the dataset must.
type rng struct {
	src   *rand.PCG
	bits  uint64 // unused random bits for noise
	nbits int
}

func newRNG(seed, stream uint64) *rng { return &rng{src: rand.NewPCG(seed, stream)} }

// float returns a uniform float64 in [0, 1).
func (r *rng) float() float64 { return float64(r.src.Uint64()>>11) / (1 << 53) }

func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// intn returns an int in [0, n) (multiply-shift; the bias is below 2⁻³² for any n we use).
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.src.Uint64(), uint64(n))
	return int(hi)
}

// noise returns an approximately standard normal draw: one of 4096 equally likely normal
// quantiles, five to a 64-bit draw. Pixel noise needs the shape of a bell, not its far tails, and
// this is ten times cheaper than Box–Muller (it was most of the generation time).
func (r *rng) noise() float32 {
	if r.nbits < noiseBits {
		r.bits, r.nbits = r.src.Uint64(), 64
	}
	v := noiseTable[r.bits&(1<<noiseBits-1)]
	r.bits >>= noiseBits
	r.nbits -= noiseBits
	return v
}

const noiseBits = 12

var noiseTable = func() (t [1 << noiseBits]float32) {
	var ss float64
	q := make([]float64, len(t))
	for k := range q {
		p := (float64(k) + 0.5) / float64(len(q))
		q[k] = math.Sqrt2 * math.Erfinv(2*p-1)
		ss += q[k] * q[k]
	}
	sd := math.Sqrt(ss / float64(len(q))) // rescale to unit variance
	for k := range t {
		t[k] = float32(q[k] / sd)
	}
	return t
}()

type vec struct{ x, y float64 }

// Shapes in unit coordinates (circumradius about 1, centred at the origin), as polygons.
var (
	squareVerts = []vec{{-0.72, -0.72}, {0.72, -0.72}, {0.72, 0.72}, {-0.72, 0.72}}
	crossVerts  = crossPolygon(0.27)
	starVerts   = starPolygon(5, 1, 0.42)
	arrowVerts  = []vec{{-1, -0.17}, {0.2, -0.17}, {0.2, -0.55}, {1, 0}, {0.2, 0.55}, {0.2, 0.17}, {-1, 0.17}}
	triVerts    = starPolygon(3, 1.12, -1) // regular triangle
)

// extents are the shapes' circumradii in unit coordinates.
var extents = map[string]float64{
	"circle": 0.85, "crescent": 0.9, "square": 1.02, "triangle": 1.12, "cross": 1.04,
	"star": 1, "arrow": 1.02, "line": 1.05,
}

func crossPolygon(w float64) []vec {
	return []vec{{1, -w}, {1, w}, {w, w}, {w, 1}, {-w, 1}, {-w, w}, {-1, w}, {-1, -w}, {-w, -w}, {-w, -1}, {w, -1}, {w, -w}}
}

// starPolygon returns a star with k points (outer radius ro, inner ri), or a regular k-gon when
// ri < 0.
func starPolygon(k int, ro, ri float64) []vec {
	var v []vec
	for i := 0; i < k; i++ {
		a := math.Pi/2 + 2*math.Pi*float64(i)/float64(k)
		v = append(v, vec{ro * math.Cos(a), ro * math.Sin(a)})
		if ri >= 0 {
			a += math.Pi / float64(k)
			v = append(v, vec{ri * math.Cos(a), ri * math.Sin(a)})
		}
	}
	return v
}

// shape is one class instance in pixel coordinates: a polygon, a disc, or a disc with a second
// disc cut out of it (the crescent).
type shape struct {
	poly           []vec
	cx, cy, r      float64
	cut            bool
	ccx, ccy, cutR float64
}

// dist is the signed distance in pixels from (x, y) to the shape's edge, negative inside.
func (sh *shape) dist(x, y float64) float64 {
	if sh.poly != nil {
		return polyDist(sh.poly, x, y)
	}
	d := math.Hypot(x-sh.cx, y-sh.cy) - sh.r
	if sh.cut {
		d = max(d, sh.cutR-math.Hypot(x-sh.ccx, y-sh.ccy))
	}
	return d
}

// polyDist is the exact signed distance to a simple polygon (after Inigo Quilez).
func polyDist(v []vec, px, py float64) float64 {
	dx, dy := px-v[0].x, py-v[0].y
	d := dx*dx + dy*dy
	s := 1.0
	for i, j := 0, len(v)-1; i < len(v); j, i = i, i+1 {
		ex, ey := v[j].x-v[i].x, v[j].y-v[i].y
		wx, wy := px-v[i].x, py-v[i].y
		t := (wx*ex + wy*ey) / (ex*ex + ey*ey)
		t = min(max(t, 0), 1)
		bx, by := wx-ex*t, wy-ey*t
		d = min(d, bx*bx+by*by)
		c1 := py >= v[i].y
		c2 := py < v[j].y
		c3 := ex*wy > ey*wx
		if (c1 && c2 && c3) || (!c1 && !c2 && !c3) {
			s = -s
		}
	}
	return s * math.Sqrt(d)
}

// hsv converts hue [0,1), saturation and value to RGB.
func hsv(h, s, v float64) [3]float64 {
	h6 := h * 6
	i := math.Floor(h6)
	f := h6 - i
	p, q, t := v*(1-s), v*(1-s*f), v*(1-s*(1-f))
	switch int(i) % 6 {
	case 0:
		return [3]float64{v, t, p}
	case 1:
		return [3]float64{q, v, p}
	case 2:
		return [3]float64{p, v, t}
	case 3:
		return [3]float64{p, q, v}
	case 4:
		return [3]float64{t, p, v}
	}
	return [3]float64{v, p, q}
}

// drawShape renders one image of the given class into img ([C,S,S], raw intensities in [0,1]).
// Every random draw comes from r in a fixed order, so an image depends only on (seed, index).
func drawShape(img []float32, s, c, class int, noise float64, r *rng, sc *scratch) {
	fs := float64(s)
	unit := fs / 28 // stroke widths and margins scale with the image

	// Geometry. The centre keeps the shape's circumcircle (extent×rad) all but inside the frame.
	name := ShapeClasses[class]
	rad := r.uniform(0.22, 0.40) * fs
	margin := rad*extents[name]*0.9 + unit
	cx := r.uniform(margin, fs-margin)
	cy := r.uniform(margin, fs-margin)
	rot := r.uniform(0, 2*math.Pi)
	outline := r.float() < 0.3
	stroke := r.uniform(1.4, 2.4) * unit

	var sh shape
	var local []vec
	switch name {
	case "circle":
		sh.cx, sh.cy, sh.r = cx, cy, rad*0.85
	case "crescent":
		sh.cx, sh.cy, sh.r = cx, cy, rad*0.9
		sh.cut, sh.cutR = true, rad*0.75
		sn, cs := math.Sincos(rot)
		sh.ccx, sh.ccy = cx+cs*rad*0.5, cy+sn*rad*0.5
	case "square":
		local = squareVerts
	case "triangle":
		local = triVerts
	case "cross":
		local = crossVerts
	case "star":
		local = starVerts
	case "arrow":
		local = arrowVerts
	case "line":
		w := r.uniform(0.8, 1.3) * unit / rad // half thickness in unit coordinates
		local = []vec{{-1.05, -w}, {1.05, -w}, {1.05, w}, {-1.05, w}}
		outline = false
	}
	if local != nil {
		sn, cs := math.Sincos(rot)
		sc.verts = sc.verts[:0]
		for _, p := range local {
			sc.verts = append(sc.verts, vec{cx + rad*(cs*p.x-sn*p.y), cy + rad*(sn*p.x+cs*p.y)})
		}
		sh.poly = sc.verts
	}

	// Colours: a bright foreground on a dark background, so every class is visible.
	var fg, bg [3]float64
	if c == 3 {
		fg = hsv(r.float(), r.uniform(0.45, 1), r.uniform(0.7, 1))
		bg = hsv(r.float(), r.uniform(0, 0.6), r.uniform(0.02, 0.35))
	} else {
		fg[0], bg[0] = r.uniform(0.65, 1), r.uniform(0, 0.3)
	}
	ga := r.uniform(0, 0.12)
	gs, gc := math.Sincos(r.uniform(0, 2*math.Pi))
	gx, gy := ga*gc/fs, ga*gs/fs

	// Coverage with analytic anti-aliasing: a pixel whose centre is d pixels outside the edge
	// is covered by clamp(0.5 - d); an outline covers |d| < stroke/2.
	if cap(sc.cov) < s*s {
		sc.cov = make([]float32, s*s)
	}
	cov := sc.cov[:s*s]
	clear(cov)
	x0, y0, x1, y1 := sh.bounds()
	pad := stroke/2 + 1
	ix0, iy0 := max(int(math.Floor(x0-pad)), 0), max(int(math.Floor(y0-pad)), 0)
	ix1, iy1 := min(int(math.Ceil(x1+pad)), s), min(int(math.Ceil(y1+pad)), s)
	for y := iy0; y < iy1; y++ {
		for x := ix0; x < ix1; x++ {
			d := sh.dist(float64(x)+0.5, float64(y)+0.5)
			if outline {
				d = math.Abs(d) - stroke/2
			}
			cov[y*s+x] = float32(min(max(0.5-d, 0), 1))
		}
	}

	for ch := 0; ch < c; ch++ {
		plane := img[ch*s*s : (ch+1)*s*s]
		for y := 0; y < s; y++ {
			for x := 0; x < s; x++ {
				b := bg[ch] + gx*(float64(x)-fs/2) + gy*(float64(y)-fs/2)
				k := y*s + x
				v := b + float64(cov[k])*(fg[ch]-b)
				if noise > 0 {
					v += noise * float64(r.noise())
				}
				plane[k] = float32(min(max(v, 0), 1))
			}
		}
	}
}

func (sh *shape) bounds() (x0, y0, x1, y1 float64) {
	if sh.poly == nil {
		return sh.cx - sh.r, sh.cy - sh.r, sh.cx + sh.r, sh.cy + sh.r
	}
	x0, y0, x1, y1 = math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range sh.poly {
		x0, y0 = min(x0, p.x), min(y0, p.y)
		x1, y1 = max(x1, p.x), max(y1, p.y)
	}
	return
}
