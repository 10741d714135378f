package featviz

import (
	"bytes"
	"fmt"
	"html/template"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// fileBase is the name, without extension, of the files of one step and layer:
// "step00000050_features.0". The step is zero-padded so that a directory listing sorts by step.
func fileBase(step int64, layer string) string {
	return fmt.Sprintf("step%08d_%s", step, safeName(layer))
}

// safeName keeps the characters of a module name that are safe in a file name and a URL.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

var fileRE = regexp.MustCompile(`^step(\d+)_(.+)\.(png|npy)$`)

// entry is what the gallery shows for one step and layer.
type entry struct {
	layer, kind string
	png, npy    string // file names relative to the gallery
	shape, full []int64
}

// gallery is the index.html of one output directory: rows are steps, columns are layers.
type gallery struct {
	id     string
	dir    string
	steps  map[int64]map[string]entry // step → column key (the layer's file name part)
	cols   []string                   // column keys in order of first appearance
	titles map[string]string          // column key → layer name as shown
	older  int                        // steps dropped from the listing (Params.Keep)
	oldest int64                      // the newest step dropped, when older > 0
}

// newGallery starts the gallery of dir with the files a previous run left there, so a resumed
// run keeps its history.
func newGallery(id, dir string) *gallery {
	g := &gallery{id: id, dir: dir, steps: map[int64]map[string]entry{}, titles: map[string]string{}}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		m := fileRE.FindStringSubmatch(de.Name())
		if m == nil || !de.Type().IsRegular() {
			continue
		}
		step, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			continue
		}
		e := g.get(step, m[2])
		if m[3] == "png" {
			e.png = de.Name()
		} else {
			e.npy = de.Name()
		}
		g.put(step, m[2], e)
	}
	return g
}

func (g *gallery) get(step int64, col string) entry {
	e, ok := g.steps[step][col]
	if !ok {
		e.layer = col
	}
	return e
}

func (g *gallery) put(step int64, col string, e entry) {
	if g.steps[step] == nil {
		g.steps[step] = map[string]entry{}
	}
	g.steps[step][col] = e
	if _, ok := g.titles[col]; !ok {
		g.cols = append(g.cols, col)
	}
	if _, ok := g.titles[col]; !ok || e.kind != "" {
		g.titles[col] = e.layer
	}
}

// add records a frame and keeps only the newest keep steps listed (keep 0: all).
func (g *gallery) add(step int64, e entry, keep int) {
	g.put(step, safeName(e.layer), e)
	if keep <= 0 || len(g.steps) <= keep {
		return
	}
	steps := make([]int64, 0, len(g.steps))
	for s := range g.steps {
		steps = append(steps, s)
	}
	slices.Sort(steps)
	for _, s := range steps[:len(steps)-keep] {
		delete(g.steps, s)
		g.older++
		g.oldest = max(g.oldest, s)
	}
}

type galleryCell struct {
	PNG, NPY, Alt, Shape string
}

type galleryRow struct {
	Step  int64
	Cells []galleryCell
}

var galleryTmpl = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>featviz {{.ID}}</title>
<style>
body{background:#18181c;color:#ddd;font:13px system-ui,sans-serif;margin:16px}
h1{font-size:18px;margin:0 0 4px}
table{border-collapse:collapse}
th,td{border:1px solid #333;padding:6px;vertical-align:top;text-align:left}
thead th{position:sticky;top:0;background:#24242a}
tbody th{font-variant-numeric:tabular-nums}
img{image-rendering:pixelated;max-width:360px;display:block}
a{color:#8cf}
.meta{color:#999;font-size:11px;margin-top:3px}
</style></head><body>
<h1>Feature maps &mdash; {{.ID}}</h1>
<p class="meta">{{len .Rows}} step(s) &times; {{len .Layers}} layer(s); updated {{.Updated}}.{{if .Older}}
The {{.Older}} older step(s), up to step {{.Oldest}}, are not listed; their files are in this directory.{{end}}
Each channel is normalised to its own min/max (viridis: dark = low, yellow = high; magenta = NaN/Inf).
Click a picture for full size.</p>
<table>
<thead><tr><th>step</th>{{range .Layers}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr><th>{{.Step}}</th>{{range .Cells}}<td>{{if .PNG}}<a href="{{.PNG}}"><img src="{{.PNG}}" loading="lazy" alt="{{.Alt}}"></a>{{end}}{{if or .Shape .NPY}}<div class="meta">{{.Shape}}{{if .NPY}} <a href="{{.NPY}}">{{.NPY}}</a>{{end}}</div>{{end}}</td>{{end}}</tr>
{{end}}</tbody></table>
</body></html>
`))

// html renders index.html.
func (g *gallery) html() []byte {
	steps := make([]int64, 0, len(g.steps))
	for s := range g.steps {
		steps = append(steps, s)
	}
	slices.Sort(steps)
	var layers []string
	for _, c := range g.cols {
		layers = append(layers, g.titles[c])
	}
	var rows []galleryRow
	for _, s := range steps {
		r := galleryRow{Step: s}
		for _, c := range g.cols {
			e, ok := g.steps[s][c]
			var cell galleryCell
			if ok {
				cell = galleryCell{PNG: e.png, NPY: e.npy, Alt: fmt.Sprintf("%s at step %d", e.layer, s)}
				if e.full != nil {
					cell.Shape = strings.TrimSpace(e.kind + " " + shapeText(e.full))
				}
			}
			r.Cells = append(r.Cells, cell)
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	err := galleryTmpl.Execute(&buf, map[string]any{
		"ID": g.id, "Layers": layers, "Rows": rows, "Updated": time.Now().Format("2006-01-02 15:04:05"),
		"Older": g.older, "Oldest": g.oldest,
	})
	if err != nil { // the template and its data are ours: this is a bug
		panic(err)
	}
	return buf.Bytes()
}
