package timing

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/torchenv"
)

// Chart size in pixels.
const (
	ChartWidth  = 960
	ChartHeight = 480
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colAxis       = color.RGBA{40, 40, 40, 255}
	colGrid       = color.RGBA{225, 225, 225, 255}
	colText       = color.RGBA{30, 30, 30, 255}
	colMuted      = color.RGBA{120, 120, 120, 255}
	colHost       = color.RGBA{31, 119, 180, 255}
	colDevice     = color.RGBA{255, 127, 14, 255}
)

// ChartPath is where the chart of out goes: the same name with .png.
func ChartPath(out string) string {
	return strings.TrimSuffix(out, filepath.Ext(out)) + ".png"
}

func (t *Timing) drawChart(env *torchenv.Env) error {
	p, err := callbacks.OutPath(&torchenv.Env{RunDir: t.runDir}, ChartPath(t.p.Out), false)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	series := []chartSeries{{label: "host", color: colHost}}
	series[0].xs, series[0].ys = t.hist.points()
	if t.devTimes != nil {
		s := chartSeries{label: "device (cuda events)", color: colDevice}
		s.xs, s.ys = t.devTimes.hist.points()
		series = append(series, s)
	}
	title := fmt.Sprintf("%s: step time (ms) over %d steps", t.ID(), t.steps)
	img := renderChart(title, t.note, series)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("chart: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	t.drawn = t.steps
	t.logf(env, fmt.Sprintf("[%s] step time chart: %s", t.ID(), p))
	return nil
}

type chartSeries struct {
	label  string
	color  color.RGBA
	xs, ys []float64
}

// renderChart draws step time against step: one line per series, nice ticks, and the y axis cut
// at three times the 98th percentile so that one slow first step does not flatten the rest
// (points above are drawn on the top edge and counted in the corner).
func renderChart(title, note string, series []chartSeries) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, ChartWidth, ChartHeight))
	fillRect(img, 0, 0, ChartWidth, ChartHeight, colBackground)
	const left, right, top, bottom = 80, 24, 56, 56
	pw, ph := ChartWidth-left-right, ChartHeight-top-bottom

	xmin, xmax := math.Inf(1), math.Inf(-1)
	var all []float64
	for _, s := range series {
		for i, x := range s.xs {
			xmin, xmax = min(xmin, x), max(xmax, x)
			all = append(all, s.ys[i])
		}
	}
	if len(all) == 0 {
		xmin, xmax = 0, 1
		all = []float64{1}
	}
	if xmax-xmin < 1 {
		xmax = xmin + 1
	}
	slices.Sort(all)
	top98 := all[int(0.98*float64(len(all)-1))]
	ymax := all[len(all)-1]
	if ymax > 3*top98 && top98 > 0 {
		ymax = 3 * top98
	}
	if ymax <= 0 {
		ymax = 1
	}
	ystep := niceStep(ymax / 5)
	ymax = math.Ceil(ymax/ystep) * ystep
	xstep := niceStep((xmax - xmin) / 8)
	px := func(x float64) int { return left + int(math.Round((x-xmin)/(xmax-xmin)*float64(pw))) }
	py := func(y float64) int {
		y = min(max(y, 0), ymax)
		return top + ph - int(math.Round(y/ymax*float64(ph)))
	}

	// grid and tick labels
	for y := 0.0; y <= ymax+ystep/2; y += ystep {
		yy := py(y)
		fillRect(img, left, yy, pw, 1, colGrid)
		lab := formatTick(y, ystep)
		drawText(img, left-8-textWidth(lab, 2), yy-7, lab, 2, colText)
	}
	for x := math.Ceil(xmin/xstep) * xstep; x <= xmax; x += xstep {
		xx := px(x)
		fillRect(img, xx, top, 1, ph, colGrid)
		fillRect(img, xx, top+ph, 1, 6, colAxis)
		lab := formatTick(x, xstep)
		drawText(img, xx-textWidth(lab, 2)/2, top+ph+10, lab, 2, colText)
	}
	fillRect(img, left, top, 2, ph+1, colAxis)
	fillRect(img, left, top+ph, pw+1, 2, colAxis)
	drawText(img, left+pw-textWidth("step", 2), ChartHeight-18, "step", 2, colMuted)
	drawText(img, 8, top-20, "ms", 2, colMuted)

	// series
	clipped := 0
	for _, s := range series {
		for i := range s.xs {
			if s.ys[i] > ymax {
				clipped++
			}
			if i == 0 {
				fillRect(img, px(s.xs[0])-1, py(s.ys[0])-1, 3, 3, s.color)
				continue
			}
			line(img, px(s.xs[i-1]), py(s.ys[i-1]), px(s.xs[i]), py(s.ys[i]), s.color)
		}
	}

	// title and legend above the plot, notes under the title
	drawText(img, left, 12, title, 2, colText)
	lx := ChartWidth - right
	for i := len(series) - 1; i >= 0; i-- {
		s := series[i]
		lx -= textWidth(s.label, 2)
		drawText(img, lx, 12, s.label, 2, colText)
		lx -= 30
		fillRect(img, lx, 17, 24, 3, s.color)
		lx -= 24
	}
	if note != "" {
		drawText(img, left, 36, note, 1, colMuted)
	}
	if clipped > 0 {
		msg := fmt.Sprintf("%d points above %s ms shown at the top", clipped, formatTick(ymax, ystep))
		drawText(img, left+pw-textWidth(msg, 1)-6, top+6, msg, 1, colMuted)
	}
	return img
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten.
func niceStep(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v, step float64) string {
	if step >= 1 {
		return fmt.Sprintf("%.0f", v)
	}
	dec := int(math.Ceil(-math.Log10(step)))
	return fmt.Sprintf("%.*f", dec, v)
}

// line draws a 2-pixel line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		fillRect(img, x0, y0, 2, 2, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}
