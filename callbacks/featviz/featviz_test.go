package featviz

import (
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// rig is a SmallCNN(1, 6) with a random 28×28 batch, an env over a temp run dir and a log.
type rig struct {
	t     *testing.T
	model *models.SmallCNN
	x     *bridge.Tensor
	env   *torchenv.Env
	mu    sync.Mutex
	logs  []string
}

func newRig(t *testing.T, batch int64) *rig {
	bridge.ManualSeed(7)
	r := &rig{t: t, model: models.NewSmallCNN(1, 6), x: bridge.Randn(bridge.Shape{batch, 1, 28, 28})}
	r.env = &torchenv.Env{Model: r.model, RunDir: t.TempDir(), Phase: "train",
		Log: func(s string) { r.mu.Lock(); r.logs = append(r.logs, s); r.mu.Unlock() }}
	return r
}

func (r *rig) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

// step runs one training-loop step as examples/cnn does: forward of env.Step, then the events.
func (r *rig) step(cb callback.HotCallback) {
	require.NoError(r.t, cb.Handle(torchenv.TrainStepStart, r.env))
	r.env.Outputs = r.model.Forward(r.x)
	require.NoError(r.t, cb.Handle(torchenv.ForwardEnd, r.env))
	require.NoError(r.t, cb.Handle(torchenv.TrainStepEnd, r.env))
	r.env.Step++
}

func attach(t *testing.T, r *rig, init map[string]any) *FeatureViz {
	f, err := New("fv", init)
	require.NoError(t, err)
	require.NoError(t, f.OnAttach(r.env))
	t.Cleanup(func() { f.Close() })
	return f
}

// files lists the file names in dir, sorted.
func files(t *testing.T, dir string) []string {
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	sort.Strings(out)
	return out
}

// linked lists the distinct href/src targets of index.html, sorted.
func linked(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	set := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:href|src)="([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
		set[m[1]] = true
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func decodePNG(t *testing.T, p string) image.Image {
	fh, err := os.Open(p)
	require.NoError(t, err)
	defer fh.Close()
	img, err := png.Decode(fh)
	require.NoError(t, err, p)
	return img
}

// wantMapSize is the grid size of n samples × c channels of h×w maps at scale s, computed from
// the layout rules: tiles of w·s × h·s under a label band, ⌈√c⌉ columns, gaps between tiles, a
// sample band when there are several samples, a two-line header and a margin all around.
func wantMapSize(n, c, h, w, s int) (int, int) {
	cols := int(math.Ceil(math.Sqrt(float64(c))))
	rows := (c + cols - 1) / cols
	block := rows*(bandH+h*s) + (rows-1)*gap
	if n > 1 {
		block += bandH
	}
	return max(minWidth, 2*margin+cols*w*s+(cols-1)*gap), 2*margin + headerH + n*block + (n-1)*sampleGap
}

func wantStripSize(n, f, cell int) (int, int) {
	cols := min(f, stripCols)
	rows := (f + cols - 1) / cols
	block := bandH + rows*cell
	if n > 1 {
		block += bandH
	}
	return max(minWidth, 2*margin+cols*cell), 2*margin + headerH + n*block + (n-1)*sampleGap
}

func TestLayoutArithmetic(t *testing.T) {
	// Pinned by hand once, so that the formulas above cannot drift with the code.
	w, h := wantMapSize(2, 6, 28, 28, 2) // 3×2 tiles of 56 px
	require.Equal(t, [2]int{4 + 3*56 + 2*2 + 4, 4 + 16 + 2*(7+2*(7+56)+2) + 4 + 4}, [2]int{w, h})
	l := layoutMaps(2, 6, 28, 28, 0)
	require.Equal(t, 2, l.scale, "auto scale for 28×28 maps")
	require.Equal(t, [2]int{w, h}, [2]int{l.width, l.height})
	require.Equal(t, 7, autoScale(7, 7))
	require.Equal(t, 1, autoScale(224, 224))
	require.Equal(t, maxScale, autoScale(1, 1))
}

func TestGridsGalleryAndNPY(t *testing.T) {
	r := newRig(t, 4)
	f := attach(t, r, map[string]any{"every": 2, "samples": 2, "channels": 6, "npy": true})
	require.Equal(t, []string{"features.0", "features.4", "features.8"}, f.Layers(), "default: every Conv2d")

	// Reference copies of what the hooked layers returned, per step.
	ref := map[string][]float32{}
	h, err := nn.RegisterForwardHook(r.model, "features.*", func(name string, m nn.Module, _, out *bridge.Tensor) {
		if nn.Kind(m) == "Conv2d" && r.env.Step%2 == 0 {
			ref[fileBase(r.env.Step, name)] = out.Narrow(0, 0, 2).Float32s()
		}
	})
	require.NoError(t, err)
	defer h.Remove()
	for range 5 {
		r.step(f)
	}
	require.NoError(t, f.Close())
	st := f.Stats()
	require.Equal(t, int64(9), st.Captured, "steps 0, 2, 4 × 3 layers")
	require.Equal(t, int64(9), st.Written)
	require.Zero(t, st.Dropped+st.Failed)

	dir := filepath.Join(r.env.RunDir, "featviz")
	require.Equal(t, dir, f.Dir())
	var want []string
	for _, s := range []int64{0, 2, 4} {
		for _, l := range []string{"features.0", "features.4", "features.8"} {
			want = append(want, fileBase(s, l)+".npy", fileBase(s, l)+".png")
		}
	}
	sort.Strings(want)
	require.Equal(t, append([]string{"index.html"}, want...), files(t, dir))
	require.Equal(t, want, linked(t, dir), "the gallery links exactly the files written")
	html, _ := os.ReadFile(filepath.Join(dir, "index.html"))
	require.Len(t, regexp.MustCompile(`<tr><th>\d+</th>`).FindAllString(string(html), -1), 3, "one row per step")
	for _, l := range []string{"features.0", "features.4", "features.8"} {
		require.Contains(t, string(html), "<th>"+l+"</th>")
	}

	// PNG sizes from the layout rules: conv outputs [2, 16|32|64, 28|14|7, 28|14|7], 6 channels.
	for l, side := range map[string]int{"features.0": 28, "features.4": 14, "features.8": 7} {
		img := decodePNG(t, filepath.Join(dir, fileBase(2, l)+".png"))
		w, h := wantMapSize(2, 6, side, side, autoScale(side, side))
		require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), l)
	}

	// .npy: the first 2 samples with all their channels, equal to the tensor the layer returned.
	for _, c := range []struct {
		layer string
		shape []int64
	}{{"features.0", []int64{2, 16, 28, 28}}, {"features.4", []int64{2, 32, 14, 14}}, {"features.8", []int64{2, 64, 7, 7}}} {
		base := fileBase(4, c.layer)
		shape, data := readNPY(t, filepath.Join(dir, base+".npy"))
		require.Equal(t, c.shape, shape)
		require.Equal(t, ref[base], data, base)
		numpyCheck(t, filepath.Join(dir, base+".npy"), c.shape, ref[base])
	}
}

// readNPY parses a float32 .npy file written by encodeNPY.
func readNPY(t *testing.T, p string) ([]int64, []float32) {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "\x93NUMPY\x01\x00", string(b[:8]))
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	require.Zero(t, (10+hl)%64, "data aligned to 64 bytes")
	header := string(b[10 : 10+hl])
	require.True(t, strings.HasSuffix(header, "\n"))
	m := regexp.MustCompile(`^\{'descr': '<f4', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \} *\n$`).FindStringSubmatch(header)
	require.NotNil(t, m, header)
	var shape []int64
	for _, s := range strings.Split(m[1], ",") {
		if s = strings.TrimSpace(s); s != "" {
			var d int64
			for _, c := range s {
				d = d*10 + int64(c-'0')
			}
			shape = append(shape, d)
		}
	}
	raw := b[10+hl:]
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return shape, out
}

// numpyCheck loads p with numpy (the system Python's) and compares shape, dtype and values.
func numpyCheck(t *testing.T, p string, shape []int64, want []float32) {
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	if exec.Command(py, "-c", "import numpy").Run() != nil {
		t.Logf("numpy cross-check skipped: %s cannot import numpy (apt-get install python3-numpy)", py)
		return
	}
	raw := filepath.Join(t.TempDir(), "raw.bin")
	out, err := exec.Command(py, "-c", `import sys, numpy
a = numpy.load(sys.argv[1])
print(a.shape, a.dtype)
open(sys.argv[2], "wb").write(a.astype("<f4").tobytes())`, p, raw).CombinedOutput()
	require.NoError(t, err, string(out))
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.FormatInt(d, 10)
	}
	tuple := "(" + strings.Join(dims, ", ") + ")" // as Python prints it: (5,) for one dimension
	if len(dims) == 1 {
		tuple = "(" + dims[0] + ",)"
	}
	require.Equal(t, tuple+" float32", strings.TrimSpace(string(out)))
	b, err := os.ReadFile(raw)
	require.NoError(t, err)
	got := make([]float32, len(b)/4)
	for i := range got {
		got[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	require.Equal(t, want, got, "numpy sees the values of the Go tensor")
}

// stepsWritten lists "step/layer" for every PNG in dir.
func stepsWritten(t *testing.T, dir string) []string {
	var out []string
	for _, n := range files(t, dir) {
		if m := fileRE.FindStringSubmatch(n); m != nil && m[3] == "png" {
			out = append(out, strings.TrimLeft(m[1], "0")+"/"+m[2])
		}
	}
	return out
}

func TestSetParamsRetargetsHooks(t *testing.T) {
	r := newRig(t, 2)
	f := attach(t, r, map[string]any{"every": 1})
	dir := f.Dir()
	r.step(f) // step 0: the three convolutions
	require.NoError(t, f.SetParams(map[string]any{"layers": []any{"classifier.1", "features.4"}}))
	require.Equal(t, []string{"features.4", "classifier.1"}, f.Layers(), "model order")
	r.step(f) // step 1: the new layers only

	err := f.SetParams(map[string]any{"layers": "features.4,nope.*"})
	require.Error(t, err)
	require.Contains(t, err.Error(), `"layers.1"`)
	require.Contains(t, err.Error(), `"nope.*"`)
	require.Contains(t, err.Error(), "matches no module")
	err = f.SetParams(map[string]any{"layers": "features.0", "every": 0})
	require.ErrorContains(t, err, `"every"`)
	require.Equal(t, []string{"features.4", "classifier.1"}, f.Layers(), "old hooks kept")
	require.Equal(t, 1, f.Params().Every)
	r.step(f) // step 2: still the layers of step 1

	require.NoError(t, f.Close())
	require.Equal(t, []string{"/features.0", "/features.4", "/features.8",
		"1/classifier.1", "1/features.4", "2/classifier.1", "2/features.4"}, stepsWritten(t, dir))
}

func TestCloseRemovesHooks(t *testing.T) {
	r := newRig(t, 2)
	f := attach(t, r, map[string]any{"every": 1})
	r.step(f)
	require.NoError(t, f.Close())
	before := files(t, f.Dir())
	require.Len(t, before, 4, "3 PNGs and the gallery")
	require.Empty(t, f.Layers())
	r.step(f) // a capture step: nothing may happen
	r.model.Forward(r.x)
	require.Equal(t, int64(3), f.Stats().Captured)
	require.Equal(t, before, files(t, f.Dir()))
	require.NoError(t, f.Close(), "a second Close is a no-op")
}

func TestPausedCapturesNothing(t *testing.T) {
	r := newRig(t, 2)
	f := attach(t, r, map[string]any{"every": 1, "layers": "features.0"})
	var _ callback.Pauser = f
	f.OnPause() // loaded off, or disabled: no events reach it, forwards go on
	r.model.Forward(r.x)
	r.env.Step++
	r.model.Forward(r.x)
	require.Zero(t, f.Stats().Captured)
	f.OnResume()
	r.step(f)
	require.Equal(t, int64(1), f.Stats().Captured)
	require.NoError(t, f.Close())
	require.Equal(t, []string{"1/features.0"}, stepsWritten(t, f.Dir()))
}

func TestEvalForwardsAndRepeatsAreNotCaptured(t *testing.T) {
	r := newRig(t, 2)
	f := attach(t, r, map[string]any{"every": 2, "layers": "features.0"})
	require.NoError(t, f.Handle(torchenv.TrainStepEnd, r.env)) // step 0 done: next forward is step 1
	r.env.Step = 1
	require.NoError(t, f.Handle(torchenv.TrainStepEnd, r.env)) // next forward is step 2
	nn.Eval(r.model)
	r.model.Forward(r.x) // evaluation between steps: not step 2's forward
	nn.Train(r.model, true)
	require.Zero(t, f.Stats().Captured)
	r.model.Forward(r.x) // step 2's forward
	r.model.Forward(r.x) // a second forward in the same step
	require.Equal(t, int64(1), f.Stats().Captured)
	require.NoError(t, f.Close())
	require.Equal(t, []string{"2/features.0"}, stepsWritten(t, f.Dir()))
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	r := newRig(t, 2)
	release := make(chan struct{})
	var once sync.Once
	blocking := func(p string, b []byte) error {
		<-release // a disk that hangs
		return writeFileAtomic(p, b)
	}
	f, err := newFeatureViz("fv", map[string]any{"every": 1, "queue": 2}, blocking)
	require.NoError(t, err)
	defer once.Do(func() { close(release) })
	require.NoError(t, f.OnAttach(r.env))

	done := make(chan time.Duration)
	go func() {
		t0 := time.Now()
		for range 5 {
			r.step(f)
		}
		done <- time.Since(t0)
	}()
	select {
	case d := <-done:
		t.Logf("5 capture steps with a hung writer: %v", d)
	case <-time.After(60 * time.Second):
		t.Fatal("training blocked on the writer")
	}
	st := f.Stats()
	require.Equal(t, int64(15), st.Captured+st.Dropped, "3 layers × 5 steps, each queued or dropped")
	require.GreaterOrEqual(t, st.Dropped, int64(12), "2 queue slots (+1 frame in the writer's hands)")
	require.LessOrEqual(t, st.Queued, 2)
	require.Contains(t, r.log(), "dropped")
	require.Contains(t, r.log(), "writer queue full (2 slots)")

	// Close gives up after its timeout while the disk hangs...
	f.closeTimeout = 50 * time.Millisecond
	require.ErrorContains(t, f.Close(), "still queued")
	// ...and the writer finishes once it is released: what was queued is written, then the
	// gallery, which lists exactly those files.
	once.Do(func() { close(release) })
	<-f.w.done
	st = f.Stats()
	require.Equal(t, st.Captured, st.Written)
	require.Len(t, stepsWritten(t, f.Dir()), int(st.Written))
	var pngs []string
	for _, n := range files(t, f.Dir()) {
		if strings.HasSuffix(n, ".png") {
			pngs = append(pngs, n)
		}
	}
	require.Equal(t, pngs, linked(t, f.Dir()))
}

func TestLinearStrip(t *testing.T) {
	r := newRig(t, 3)
	f := attach(t, r, map[string]any{"every": 1, "samples": 3, "layers": "classifier.1"})
	var logits []float32
	h, err := nn.RegisterForwardHook(r.model, "classifier.1", func(_ string, _ nn.Module, _, out *bridge.Tensor) {
		logits = out.Float32s()
	})
	require.NoError(t, err)
	defer h.Remove()
	r.step(f)
	require.NoError(t, f.Close())
	img := decodePNG(t, filepath.Join(f.Dir(), fileBase(0, "classifier.1")+".png"))
	w, ht := wantStripSize(3, 6, autoCell(6))
	require.Equal(t, image.Rect(0, 0, w, ht), img.Bounds())

	// Cell colours: the strip is normalised over all samples, so the smallest logit is the
	// darkest viridis colour and the largest the brightest.
	lo, hi := slices.Index(logits, slices.Min(logits)), slices.Index(logits, slices.Max(logits))
	cell := autoCell(6)
	at := func(k int) [3]uint32 {
		i, j := k/6, k%6
		y := margin + headerH + i*(2*bandH+cell+sampleGap) + 2*bandH + cell/2
		c := img.At(margin+j*cell+cell/2, y)
		r, g, b, _ := c.RGBA()
		return [3]uint32{r >> 8, g >> 8, b >> 8}
	}
	v0, v255 := viridis[0], viridis[levels-1]
	require.Equal(t, [3]uint32{uint32(v0.R), uint32(v0.G), uint32(v0.B)}, at(lo))
	require.Equal(t, [3]uint32{uint32(v255.R), uint32(v255.G), uint32(v255.B)}, at(hi))
}

func TestStripWrapsAndRanks(t *testing.T) {
	for _, c := range []struct {
		shape    []int64
		w, h     int
		maps     bool
		channels int
	}{
		{[]int64{1, 200}, 0, 0, false, 0},        // wraps after 64 cells: 4 rows
		{[]int64{2, 5, 9}, 0, 0, true, 0},        // [N, T, C]: one token × channel map per sample
		{[]int64{3}, 0, 0, false, 0},             // [N]: one value per sample
		{[]int64{1, 2, 3, 4, 5}, 0, 0, false, 0}, // flattened per sample
		{[]int64{1, 10, 4, 4}, 0, 0, true, 3},    // 3 of 10 channels drawn
	} {
		n := int64(1)
		for _, d := range c.shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i % 7)
		}
		fr := &frame{layer: "x", kind: "Module", full: c.shape, shape: c.shape, data: data, channels: c.channels}
		img, err := render(fr)
		require.NoError(t, err, c.shape)
		var w, h int
		switch len(c.shape) {
		case 1:
			w, h = wantStripSize(int(c.shape[0]), 1, autoCell(1))
		case 2:
			w, h = wantStripSize(int(c.shape[0]), int(c.shape[1]), autoCell(min(int(c.shape[1]), stripCols)))
		case 3:
			l := layoutSeq(int(c.shape[0]), int(c.shape[1]), int(c.shape[2]), 0)
			w, h = wantSeqSize(int(c.shape[0]), int(c.shape[1]), int(c.shape[2]), l.cellW, l.cellH)
		case 4:
			w, h = wantMapSize(1, c.channels, 4, 4, autoScale(4, 4))
		default:
			w, h = wantStripSize(1, 120, autoCell(64))
		}
		require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "%v", c.shape)
	}
	_, err := render(&frame{shape: []int64{0, 4}})
	require.Error(t, err)
}

func TestMapColours(t *testing.T) {
	rgba := func(c interface{ RGBA() (r, g, b, a uint32) }) [4]uint8 {
		r, g, b, a := c.RGBA()
		return [4]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), uint8(a >> 8)}
	}
	// One sample, two channels of 2×2 at scale 3: a ramp with a NaN, and a flat channel.
	nan := float32(math.NaN())
	fr := &frame{layer: "l", kind: "Conv2d", full: []int64{1, 2, 2, 2}, shape: []int64{1, 2, 2, 2}, channels: 2, scale: 3,
		data: []float32{-1, 0, 3, nan, 5, 5, 5, 5}}
	img, err := render(fr)
	require.NoError(t, err)
	l := layoutMaps(1, 2, 2, 2, 3)
	px := func(ch, y, x int) [4]uint8 {
		x0 := margin + ch*(l.tileW+gap) + x*3 + 1
		y0 := margin + headerH + bandH + y*3 + 1
		return rgba(img.At(x0, y0))
	}
	require.Equal(t, rgba(viridis[0]), px(0, 0, 0), "min of the channel")
	require.Equal(t, rgba(viridis[63]), px(0, 0, 1), "0 is a quarter of [-1, 3]: level 0.25·251 ≈ 63")
	require.Equal(t, rgba(viridis[levels-1]), px(0, 1, 0), "max of the channel")
	require.Equal(t, rgba(palette[nanColor]), px(0, 1, 1), "NaN")
	require.Equal(t, rgba(viridis[0]), px(1, 0, 0), "a flat channel is dark")
	// The colormap rises in luminance, as viridis does.
	prev := -1.0
	for _, c := range viridis {
		lum := 0.2126*float64(c.R) + 0.7152*float64(c.G) + 0.0722*float64(c.B)
		require.Greater(t, lum, prev-0.5)
		prev = lum
	}
}

func TestNPYHeader(t *testing.T) {
	for _, shape := range [][]int64{{5}, {2, 3}, {1, 16, 28, 28}, {}} {
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(i) - 0.5
		}
		b, err := encodeNPY(shape, data)
		require.NoError(t, err)
		p := filepath.Join(t.TempDir(), "a.npy")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		gotShape, got := readNPY(t, p)
		if len(shape) == 0 {
			gotShape = []int64{}
		}
		require.Equal(t, shape, gotShape)
		require.Equal(t, data, got)
		if len(shape) == 1 {
			require.Contains(t, string(b), "'shape': (5,)")
		}
		numpyCheck(t, p, shape, data)
	}
	_, err := encodeNPY([]int64{2, 2}, make([]float32, 3))
	require.Error(t, err)
}

func TestParamsValidation(t *testing.T) {
	f, err := New("fv", nil)
	require.NoError(t, err)
	defer f.Close()
	require.Equal(t, Params{Every: 50, Samples: 1, Channels: 16, Scale: "auto", Out: "featviz", Queue: 8, Keep: 200}, f.Params())
	for _, c := range []struct {
		p   map[string]any
		key string
	}{
		{map[string]any{"every": 0}, "every"},
		{map[string]any{"samples": "x"}, "samples"},
		{map[string]any{"channels": -1}, "channels"},
		{map[string]any{"scale": "big"}, "scale"},
		{map[string]any{"scale": 17}, "scale"},
		{map[string]any{"scale": "0"}, "scale"},
		{map[string]any{"queue": 0}, "queue"},
		{map[string]any{"npy": "maybe"}, "npy"},
		{map[string]any{"out": ""}, "out"},
		{map[string]any{"layers": []any{"features.["}}, "layers.0"},
		{map[string]any{"layers": []any{"features.0", " "}}, "layers.1"},
		{map[string]any{"evry": 3}, "evry"},
	} {
		err := f.SetParams(c.p)
		require.Error(t, err, "%v", c.p)
		require.Contains(t, err.Error(), `"`+c.key+`"`, "%v", c.p)
		require.NotEmpty(t, params.Errors(err), "%v", c.p)
		require.Equal(t, DefaultParams().Every, f.Params().Every)
	}
	require.NoError(t, f.SetParams(map[string]any{"every": "10", "scale": 3, "layers": "features.0,classifier.*", "npy": "true", "queue": 4}))
	p := f.Params()
	require.Equal(t, 10, p.Every)
	require.Equal(t, "3", p.Scale)
	require.Equal(t, []string{"features.0", "classifier.*"}, p.Layers)
	require.True(t, p.Npy)
	require.NoError(t, f.SetParams(map[string]any{"every": "10"}), "idempotent")

	// Output paths stay in the run dir; a bad one is refused at attach and at set_params.
	r := newRig(t, 1)
	g, err := New("g", map[string]any{"out": "../elsewhere"})
	require.NoError(t, err)
	err = g.OnAttach(r.env)
	require.ErrorContains(t, err, `param "out"`)
	require.NoError(t, g.Close())
	g = attach(t, r, map[string]any{"out": "viz/a"})
	require.ErrorContains(t, g.SetParams(map[string]any{"out": "/etc"}), `param "out"`)
	require.Equal(t, filepath.Join(r.env.RunDir, "viz", "a"), g.Dir())
	require.NoError(t, g.SetParams(map[string]any{"out": "viz/b"}))
	require.DirExists(t, filepath.Join(r.env.RunDir, "viz", "b"))

	// A model without convolutions needs layers.
	err = (&FeatureViz{}).OnAttach(&torchenv.Env{})
	require.ErrorContains(t, err, "no model")
	h, err := New("h", nil)
	require.NoError(t, err)
	defer h.Close()
	err = h.OnAttach(&torchenv.Env{Model: models.MLP(4, 8, 2), RunDir: t.TempDir()})
	require.ErrorContains(t, err, "no Conv2d")
}

func TestRegisteredUnderGoAndHotcbNames(t *testing.T) {
	for _, k := range [][2]string{
		{"github.com/hotcb/hotcb/callbacks/featviz", "FeatureViz"},
		{callbacks.PythonPackage + ".feat_viz", "FeatureVizCallback"},
		{callbacks.PythonPackage, "FeatureVizCallback"},
	} {
		fac, err := callback.Default.Lookup(k[0], k[1])
		require.NoError(t, err)
		cb, err := fac("x", map[string]any{"every": 5})
		require.NoError(t, err)
		require.Equal(t, "x", cb.ID())
		require.NoError(t, cb.(callback.Closer).Close())
	}
	fac, _ := callback.Default.Lookup("github.com/hotcb/hotcb/callbacks/featviz", "FeatureViz")
	_, err := fac("x", map[string]any{"every": -5})
	require.ErrorContains(t, err, `"every"`)
}

func TestGalleryKeepsAResumedRunsFilesAndFollowsOut(t *testing.T) {
	r := newRig(t, 2)
	f := attach(t, r, map[string]any{"every": 1, "layers": "features.0"})
	r.step(f)
	require.NoError(t, f.Close())
	// A new instance on the same directory (a resumed run) lists the old frames with the new.
	g := attach(t, r, map[string]any{"every": 1, "layers": "features.4"})
	r.step(g)
	require.NoError(t, g.SetParams(map[string]any{"out": "featviz2"}))
	r.step(g)
	require.NoError(t, g.Close())
	dir := filepath.Join(r.env.RunDir, "featviz")
	require.Equal(t, []string{"step00000000_features.0.png", "step00000001_features.4.png"}, linked(t, dir))
	require.Equal(t, []string{"step00000002_features.4.png"}, linked(t, filepath.Join(r.env.RunDir, "featviz2")))
	html, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	require.Contains(t, string(html), "<th>features.0</th><th>features.4</th>")
}

// A long run keeps only the newest keep steps in index.html (and in memory); every frame stays
// on disk, and the gallery says how many steps it no longer lists.
func TestGalleryKeepsTheNewestSteps(t *testing.T) {
	r := newRig(t, 1)
	f := attach(t, r, map[string]any{"every": 1, "keep": 2, "layers": []any{"features.0"}})
	for range 5 {
		r.step(f)
	}
	require.NoError(t, f.Close())
	require.Equal(t, int64(5), f.Stats().Written)
	dir := f.Dir()
	var onDisk []string
	for s := range int64(5) {
		onDisk = append(onDisk, fileBase(s, "features.0")+".png")
	}
	require.Equal(t, append([]string{"index.html"}, onDisk...), files(t, dir), "older frames stay on disk")
	require.Equal(t, onDisk[3:], linked(t, dir), "the gallery lists the newest two steps")
	html, err := os.ReadFile(filepath.Join(dir, "index.html"))
	require.NoError(t, err)
	require.Contains(t, string(html), "The 3 older step(s), up to step 2, are not listed")

	_, err = New("bad", map[string]any{"keep": 0})
	require.ErrorContains(t, err, "keep")
}

// TestScaleDoc: the scale param's doc (in package spec) names the largest scale there is.
func TestScaleDoc(t *testing.T) {
	var doc string
	for _, p := range spec.FeatureViz.Params() {
		if p.Key == "scale" {
			doc = p.Doc
		}
	}
	require.Contains(t, doc, fmt.Sprintf("1 to %d,", maxScale))
}
