package featviz

import (
	"fmt"
	"image"
	"math"
	"strconv"
	"strings"
)

// Geometry of the pictures, in pixels. Tests recompute the sizes from these.
const (
	margin     = 4                // around everything
	gap        = 2                // between tiles
	bandH      = glyphH + 2       // the label band above each tile, strip or sample
	headerH    = 2*(glyphH+2) + 2 // two lines: layer and kind; step and shape
	sampleGap  = 4                // between the blocks of two samples
	minWidth   = 96               // so that the header stays readable on tiny grids
	targetTile = 48               // auto scale: the longer side of a tile reaches this
	maxScale   = 16               // upper bound of the scale parameter and of auto
	stripCols  = 64               // a heat strip wraps after this many cells
	stripWidth = 256              // auto cell size aims at this strip width
)

// autoScale is the upscale factor that brings a map's longer side to about targetTile pixels.
func autoScale(h, w int) int {
	side := max(h, w, 1)
	return min(max((targetTile+side-1)/side, 1), maxScale)
}

// autoCell is the cell size of a heat strip with cols cells per row.
func autoCell(cols int) int { return min(max(stripWidth/max(cols, 1), 4), 32) }

// mapLayout places the tiles of n samples × c channels of h×w maps: per sample, a grid of cols ×
// rows tiles (a band with the channel number above each), samples stacked vertically, each under
// a "sample i" band when there are several.
type mapLayout struct {
	n, c, h, w, scale int
	cols, rows        int
	tileW, tileH      int
	blockH            int // one sample's block, its band included
	width, height     int
}

func layoutMaps(n, c, h, w, scale int) mapLayout {
	if scale <= 0 {
		scale = autoScale(h, w)
	}
	l := mapLayout{n: n, c: c, h: h, w: w, scale: scale}
	l.cols = int(math.Ceil(math.Sqrt(float64(c))))
	l.rows = (c + l.cols - 1) / l.cols
	l.tileW, l.tileH = w*scale, h*scale
	l.blockH = l.rows*(bandH+l.tileH) + (l.rows-1)*gap
	if n > 1 {
		l.blockH += bandH
	}
	l.width = max(minWidth, 2*margin+l.cols*l.tileW+(l.cols-1)*gap)
	l.height = 2*margin + headerH + n*l.blockH + (n-1)*sampleGap
	return l
}

// stripLayout places n samples × f values as heat strips of cell×cell squares, wrapped after
// cols cells, each sample's strip under a band of feature indices.
type stripLayout struct {
	n, f, cell    int
	cols, rows    int
	blockH        int
	width, height int
}

func layoutStrip(n, f, scale int) stripLayout {
	l := stripLayout{n: n, f: f}
	l.cols = min(max(f, 1), stripCols)
	l.rows = (f + l.cols - 1) / l.cols
	l.cell = scale
	if l.cell <= 0 {
		l.cell = autoCell(l.cols)
	}
	l.blockH = bandH + l.rows*l.cell
	if n > 1 {
		l.blockH += bandH
	}
	l.width = max(minWidth, 2*margin+l.cols*l.cell)
	l.height = 2*margin + headerH + n*l.blockH + (n-1)*sampleGap
	return l
}

// frame is one captured module output on its way to the writer.
type frame struct {
	dir      string  // absolute output directory
	step     int64   // the step the forward belongs to
	layer    string  // dotted module name
	kind     string  // "Conv2d", "Linear", ...
	full     []int64 // shape of the module's output
	shape    []int64 // shape of data: the first samples, maybe the first channels
	data     []float32
	channels int // channels to draw (4-D outputs)
	scale    int // upscale factor; 0 is auto
	npy      bool
	keep     int // steps the gallery lists (Params.Keep); 0: all
}

// view is how a frame is drawn: as maps (n, c, h, w) or as a strip (n, f).
func (fr *frame) view() (maps bool, n, c, h, w int) {
	s := fr.shape
	switch len(s) {
	case 0:
		return false, 1, 1, 1, 1
	case 1:
		return false, int(s[0]), 1, 1, 1
	case 2:
		return false, int(s[0]), int(s[1]), 1, 1
	case 3:
		return true, int(s[0]), 1, int(s[1]), int(s[2])
	case 4:
		return true, int(s[0]), min(int(s[1]), max(fr.channels, 1)), int(s[2]), int(s[3])
	}
	f := int64(1)
	for _, d := range s[1:] {
		f *= d
	}
	return false, int(s[0]), int(f), 1, 1
}

// render draws the frame: attention maps for attention weights ([N, heads, T, T], [N, T, T]; see
// sequence.go), token × channel maps for sequences ([N, T, C]), a grid of per-channel maps for
// image-like outputs ([N, C, H, W]), a heat strip for the rest ([N, F] from a Linear layer;
// other ranks flattened per sample).
func render(fr *frame) (*image.Paletted, error) {
	maps, n, c, h, w := fr.view()
	if n == 0 || c == 0 || h == 0 || w == 0 {
		return nil, fmt.Errorf("featviz: nothing to draw in a tensor of shape %v", fr.shape)
	}
	if s := fr.shape; isAttention(fr) {
		if len(s) == 3 {
			return renderAttn(fr, layoutAttn(n, 1, int(s[2]), fr.scale), 1), nil
		}
		return renderAttn(fr, layoutAttn(n, c, int(s[3]), fr.scale), int(s[1])), nil
	} else if len(s) == 3 {
		rows, cols := int(s[1]), int(s[2])
		return renderSeq(fr, layoutSeq(n, min(rows, maxSeqRows), min(cols, maxSeqCols), fr.scale), rows, cols), nil
	}
	if maps {
		return renderMaps(fr, layoutMaps(n, c, h, w, fr.scale)), nil
	}
	return renderStrip(fr, layoutStrip(n, c, fr.scale)), nil
}

func newCanvas(w, h int) *image.Paletted {
	return image.NewPaletted(image.Rect(0, 0, w, h), palette) // all background (index 0)
}

func shapeText(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func drawHeader(img *image.Paletted, fr *frame, extra string) {
	r := image.Rect(margin, margin, img.Rect.Dx()-margin, margin+headerH)
	drawText(img, margin, margin+1, fr.layer+" "+fr.kind, textColor, r)
	drawText(img, margin, margin+1+glyphH+2, fmt.Sprintf("STEP %d %s%s", fr.step, shapeText(fr.full), extra), dimText, r)
}

// minMax is the range of the finite values of xs (0, 0 when there are none).
func minMax(xs []float32) (lo, hi float32) {
	first := true
	for _, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			continue
		}
		if first {
			lo, hi, first = v, v, false
		} else if v < lo {
			lo = v
		} else if v > hi {
			hi = v
		}
	}
	return lo, hi
}

// level is the viridis level of v in [lo, hi]; a flat range maps to the lowest level (a dead
// channel looks dark).
func level(v, lo, hi float32) int {
	if hi <= lo {
		return 0
	}
	i := int(float64(v-lo)/float64(hi-lo)*float64(levels-1) + 0.5)
	return min(max(i, 0), levels-1)
}

// shade is the palette index of v in [lo, hi]: its viridis level, or magenta for NaN and ±Inf.
func shade(v, lo, hi float32) uint8 {
	if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
		return nanColor
	}
	return firstLevel + uint8(level(v, lo, hi))
}

func fillRect(img *image.Paletted, x, y, w, h int, c uint8) {
	for yy := y; yy < y+h; yy++ {
		off := img.PixOffset(x, yy)
		row := img.Pix[off : off+w]
		for i := range row {
			row[i] = c
		}
	}
}

func renderMaps(fr *frame, l mapLayout) *image.Paletted {
	img := newCanvas(l.width, l.height)
	drawHeader(img, fr, "")
	// data is [n, C, h, w] with C ≥ l.c channels captured (all of them when npy is on).
	captured := 1
	if len(fr.shape) == 4 {
		captured = int(fr.shape[1])
	}
	plane := l.h * l.w
	for i := 0; i < l.n; i++ {
		top := margin + headerH + i*(l.blockH+sampleGap)
		if l.n > 1 {
			drawText(img, margin, top+1, fmt.Sprintf("SAMPLE %d", i), dimText, img.Rect)
			top += bandH
		}
		for k := 0; k < l.c; k++ {
			x0 := margin + (k%l.cols)*(l.tileW+gap)
			y0 := top + (k/l.cols)*(bandH+l.tileH+gap)
			drawText(img, x0, y0+1, strconv.Itoa(k), textColor, image.Rect(x0, y0, x0+l.tileW, y0+bandH))
			y0 += bandH
			off := (i*captured + k) * plane
			ch := fr.data[off : off+plane]
			lo, hi := minMax(ch)
			for y := 0; y < l.h; y++ {
				for x := 0; x < l.w; x++ {
					fillRect(img, x0+x*l.scale, y0+y*l.scale, l.scale, l.scale, shade(ch[y*l.w+x], lo, hi))
				}
			}
		}
	}
	return img
}

func renderStrip(fr *frame, l stripLayout) *image.Paletted {
	img := newCanvas(l.width, l.height)
	lo, hi := minMax(fr.data)
	drawHeader(img, fr, fmt.Sprintf(" MIN %s MAX %s", fmtVal(lo), fmtVal(hi)))
	// Feature indices every tick cells, spaced so that the numbers do not touch.
	tick := 1
	for _, t := range []int{1, 2, 5, 10, 20, 50} {
		tick = t
		if t*l.cell >= textWidth(strconv.Itoa(l.cols-1))+2 {
			break
		}
	}
	for i := 0; i < l.n; i++ {
		top := margin + headerH + i*(l.blockH+sampleGap)
		if l.n > 1 {
			drawText(img, margin, top+1, fmt.Sprintf("SAMPLE %d", i), dimText, img.Rect)
			top += bandH
		}
		for j := 0; j < l.cols; j += tick {
			drawText(img, margin+j*l.cell, top+1, strconv.Itoa(j), textColor, img.Rect)
		}
		top += bandH
		row := fr.data[i*l.f : (i+1)*l.f]
		for j, v := range row {
			fillRect(img, margin+(j%l.cols)*l.cell, top+(j/l.cols)*l.cell, l.cell, l.cell, shade(v, lo, hi))
		}
	}
	return img
}

func fmtVal(v float32) string { return strconv.FormatFloat(float64(v), 'g', 3, 32) }
