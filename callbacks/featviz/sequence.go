package featviz

import (
	"fmt"
	"image"
	"math"
	"slices"
	"strconv"
)

// Sequence models' activations and attention weights.
//
// A [N, T, C] output (a transformer block, an RNN, an embedding) is drawn per sample as one
// token × channel heat map: a row per position, a column per channel, cells as wide and as tall
// as it takes to make a map of about seqTargetW × seqTargetH pixels (so neither a long sequence
// nor a wide model becomes a thin strip), coloured over the sample's 1st to 99th percentile
// (one outlier channel, common in transformers, does not flatten the rest), with position and
// channel numbers along the edges. A Conv1d's [N, C, L] is drawn the same way, channels down.
//
// Attention weights — [N, heads, T, T] or [N, T, T] whose rows are probability distributions
// (non-negative, summing to 1) — are drawn as T × T maps, queries down and keys across, one per
// head (the first `channels` heads), each coloured from 0 to its own 99th percentile, so that a
// causal mask shows as the dark upper triangle and a head that attends to the previous token as
// a bright sub-diagonal.

// Geometry of the sequence and attention pictures, in pixels.
const (
	seqTargetW = 384 // auto cells: a token × channel map aims at this width...
	seqTargetH = 192 // ...and this height
	attnTarget = 128 // auto cells: an attention map aims at this side
	barW       = 64  // the colour bar's gradient
	maxSeqRows = 256 // positions of a [N, T, C] output captured and drawn (the first ones)
	maxSeqCols = 512 // channels of a [N, T, C] output captured and drawn
)

// tickSteps are the spacings tick labels are chosen from.
var tickSteps = []int{1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000}

// tickStep is the smallest spacing whose labels, cell pixels apart, leave room for need pixels.
func tickStep(cell, need int) int {
	for _, k := range tickSteps {
		if k*cell >= need {
			return k
		}
	}
	return tickSteps[len(tickSteps)-1]
}

// seqCell is the auto cell size along an axis of n cells aiming at target pixels.
func seqCell(n, target int) int { return min(max((target+n/2)/max(n, 1), 1), maxScale) }

// gutter is the width of the row numbers left of a map of rows rows.
func gutter(rows int) int { return textWidth(strconv.Itoa(max(rows-1, 0))) + 2 }

// seqLayout places n samples of rows × cols heat maps: a colour bar under the header, then per
// sample a band of column numbers over the map and the row numbers in a gutter on its left.
type seqLayout struct {
	n, rows, cols int
	cellW, cellH  int
	gutter        int
	blockH        int
	width, height int
}

func layoutSeq(n, rows, cols, scale int) seqLayout {
	l := seqLayout{n: n, rows: rows, cols: cols, cellW: scale, cellH: scale, gutter: gutter(rows)}
	if scale <= 0 {
		l.cellW, l.cellH = seqCell(cols, seqTargetW), seqCell(rows, seqTargetH)
	}
	l.blockH = bandH + rows*l.cellH
	if n > 1 {
		l.blockH += bandH
	}
	l.width = max(minWidth, 2*margin+l.gutter+cols*l.cellW, 2*margin+legendW)
	l.height = 2*margin + headerH + bandH + n*l.blockH + (n-1)*sampleGap
	return l
}

// legendW is the width the colour bar and its labels may take.
var legendW = barW + 8 + 2*textWidth("P99 PER SAMPLE")

// attnLayout places n samples × h heads of t × t attention maps: per sample a grid of ⌈√h⌉
// columns, each map under a band with its head number and with query numbers in a gutter.
type attnLayout struct {
	n, h, t       int
	cell          int
	cols, rows    int
	gutter        int
	tileW, tileH  int
	blockH        int
	width, height int
}

func layoutAttn(n, h, t, scale int) attnLayout {
	l := attnLayout{n: n, h: h, t: t, cell: scale, gutter: gutter(t)}
	if scale <= 0 {
		l.cell = seqCell(t, attnTarget)
	}
	l.cols = int(math.Ceil(math.Sqrt(float64(h))))
	l.rows = (h + l.cols - 1) / l.cols
	l.tileW, l.tileH = l.gutter+t*l.cell, bandH+t*l.cell
	l.blockH = l.rows*l.tileH + (l.rows-1)*gap
	if n > 1 {
		l.blockH += bandH
	}
	l.width = max(minWidth, 2*margin+l.cols*l.tileW+(l.cols-1)*2*gap, 2*margin+legendW)
	l.height = 2*margin + headerH + bandH + n*l.blockH + (n-1)*sampleGap
	return l
}

// isAttention reports whether the frame holds attention weights: rank 3 or 4, the last two
// dimensions equal (in the output and in what was captured), every value in [0, 1] and every
// row summing to 1 (to at most 1 when the capture cut the rows short).
func isAttention(fr *frame) bool {
	s, full := fr.shape, fr.full
	if len(s) < 3 || len(s) > 4 || len(full) != len(s) || full[len(full)-1] != full[len(full)-2] ||
		s[len(s)-1] != s[len(s)-2] {
		return false
	}
	t := int(s[len(s)-1])
	if t < 2 || len(fr.data) == 0 || len(fr.data)%t != 0 {
		return false
	}
	whole := s[len(s)-1] == full[len(full)-1]
	tol := 1e-3 * max(1, float64(t)/64)
	for i := 0; i < len(fr.data); i += t {
		var sum float64
		for _, v := range fr.data[i : i+t] {
			if !(v >= -1e-6 && v <= 1+1e-6) { // NaN fails too
				return false
			}
			sum += float64(v)
		}
		if sum > 1+tol || (whole && sum < 1-tol) {
			return false
		}
	}
	return true
}

// percentileRange is the p-th and (100−p)-th percentiles of the finite values of xs (linear
// interpolation between ranks), or their min and max when p is 0; 0, 0 when none is finite.
func percentileRange(xs []float32, p float64) (lo, hi float32) {
	vals := make([]float32, 0, len(xs))
	for _, v := range xs {
		if !math.IsNaN(float64(v)) && !math.IsInf(float64(v), 0) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return 0, 0
	}
	slices.Sort(vals)
	at := func(q float64) float32 {
		pos := q / 100 * float64(len(vals)-1)
		i := int(pos)
		if i >= len(vals)-1 {
			return vals[len(vals)-1]
		}
		f := float32(pos - float64(i))
		return vals[i] + f*(vals[i+1]-vals[i])
	}
	return at(p), at(100 - p)
}

// drawColourBar draws "lo [gradient] hi" with its top-left corner at (x, y).
func drawColourBar(img *image.Paletted, x, y int, lo, hi string) {
	drawText(img, x, y+1, lo, dimText, img.Rect)
	x += textWidth(lo) + 4
	for i := range barW {
		fillRect(img, x+i, y, 1, glyphH+2, firstLevel+uint8(i*(levels-1)/(barW-1)))
	}
	drawText(img, x+barW+4, y+1, hi, dimText, img.Rect)
}

// drawHeat draws a rows × cols map of vals (row-major, stride values per row) with its top-left
// cell at (x, y), coloured over [lo, hi] (values outside take the end colours), and the row
// numbers right-aligned in the gutter pixels left of it.
func drawHeat(img *image.Paletted, x, y, rows, cols, stride, cellW, cellH, gutterW int, vals []float32, lo, hi float32) {
	for r := range rows {
		row := vals[r*stride : r*stride+cols]
		for c, v := range row {
			fillRect(img, x+c*cellW, y+r*cellH, cellW, cellH, shade(min(max(v, lo), hi), lo, hi))
		}
	}
	step := tickStep(cellH, glyphH+4)
	clip := image.Rect(x-gutterW, y, x, y+rows*cellH)
	for r := 0; r < rows; r += step {
		s := strconv.Itoa(r)
		drawText(img, x-2-textWidth(s), y+r*cellH+max(cellH-glyphH, 0)/2, s, dimText, clip)
	}
}

// renderSeq draws [n, dataRows, dataCols] as token × channel maps (the first l.rows × l.cols).
func renderSeq(fr *frame, l seqLayout, dataRows, dataCols int) *image.Paletted {
	img := newCanvas(l.width, l.height)
	rowName, colName := "TOKEN", "CHANNEL"
	if fr.kind == "Conv1d" {
		rowName, colName = "CHANNEL", "POSITION"
	}
	extra := fmt.Sprintf(" %s X %s", rowName, colName)
	if l.rows < int(fr.full[1]) || l.cols < int(fr.full[2]) {
		extra += fmt.Sprintf(" FIRST %dX%d", l.rows, l.cols)
	}
	drawHeader(img, fr, extra)
	plane := dataRows * dataCols
	los, his := make([]float32, l.n), make([]float32, l.n)
	for i := range l.n {
		los[i], his[i] = percentileRange(fr.data[i*plane:(i+1)*plane], 1)
	}
	top := margin + headerH
	if l.n == 1 {
		drawColourBar(img, margin, top, fmtVal(los[0]), fmtVal(his[0])+" (P1..P99)")
	} else {
		drawColourBar(img, margin, top, "P1", "P99 PER SAMPLE")
	}
	top += bandH
	x0 := margin + l.gutter
	colStep := tickStep(l.cellW, textWidth(strconv.Itoa(l.cols-1))+6)
	for i := range l.n {
		y := top + i*(l.blockH+sampleGap)
		if l.n > 1 {
			drawText(img, margin, y+1, fmt.Sprintf("SAMPLE %d  %s..%s", i, fmtVal(los[i]), fmtVal(his[i])), dimText, img.Rect)
			y += bandH
		}
		for c := 0; c < l.cols; c += colStep {
			drawText(img, x0+c*l.cellW, y+1, strconv.Itoa(c), textColor, img.Rect)
		}
		y += bandH
		drawHeat(img, x0, y, l.rows, l.cols, dataCols, l.cellW, l.cellH, l.gutter, fr.data[i*plane:(i+1)*plane], los[i], his[i])
	}
	return img
}

// renderAttn draws [n, heads, t, t] (heads of which l.h are drawn; [n, t, t] as one head) as
// attention maps.
func renderAttn(fr *frame, l attnLayout, capturedHeads int) *image.Paletted {
	img := newCanvas(l.width, l.height)
	drawHeader(img, fr, " QUERY X KEY")
	top := margin + headerH
	drawColourBar(img, margin, top, "0", "P99 PER HEAD")
	top += bandH
	plane := l.t * l.t
	for i := range l.n {
		y := top + i*(l.blockH+sampleGap)
		if l.n > 1 {
			drawText(img, margin, y+1, fmt.Sprintf("SAMPLE %d", i), dimText, img.Rect)
			y += bandH
		}
		for k := range l.h {
			x0 := margin + (k%l.cols)*(l.tileW+2*gap)
			y0 := y + (k/l.cols)*(l.tileH+gap)
			m := fr.data[(i*capturedHeads+k)*plane : (i*capturedHeads+k+1)*plane]
			_, hi := percentileRange(m, 1)
			if hi <= 0 {
				hi = 1
			}
			label := fmt.Sprintf("HEAD %d  MAX %s", k, fmtVal(slices.Max(m)))
			if len(fr.shape) == 3 {
				label = fmt.Sprintf("MAX %s", fmtVal(slices.Max(m)))
			}
			drawText(img, x0+l.gutter, y0+1, label, textColor, image.Rect(x0, y0, x0+l.tileW, y0+bandH))
			drawHeat(img, x0+l.gutter, y0+bandH, l.t, l.t, l.t, l.cell, l.cell, l.gutter, m, 0, hi)
		}
	}
	return img
}
