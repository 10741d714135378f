package data

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"

	"github.com/hotcb/hotcb/bridge"
)

// GridOptions lay out WriteGrid's picture.
type GridOptions struct {
	Cols  int // images per row (default 8)
	Scale int // each pixel becomes Scale×Scale (default 3)
	Pad   int // pixels between images (default 1)
}

// WriteGrid draws images [N,C,H,W] (C = 1 or 3), normalised with norm, as a PNG grid: row by
// row, Cols images per row. A zero norm (no channels) scales the images' own minimum to black
// and maximum to white.
func WriteGrid(w io.Writer, images *bridge.Tensor, norm Norm, opts GridOptions) error {
	cols, scale, pad := opts.Cols, opts.Scale, opts.Pad
	if cols <= 0 {
		cols = 8
	}
	if scale <= 0 {
		scale = 3
	}
	if pad <= 0 {
		pad = 1
	}
	var shape bridge.Shape
	var pix []float32
	if err := bridge.Try(func() { shape, pix = images.Shape(), images.Float32s() }); err != nil {
		return err
	}
	if len(shape) != 4 || (shape[1] != 1 && shape[1] != 3) {
		return fmt.Errorf("data: grid: images %v, want [N,1 or 3,H,W]", shape)
	}
	n, c, h, wd := int(shape[0]), int(shape[1]), int(shape[2]), int(shape[3])
	if n == 0 {
		return fmt.Errorf("data: grid: no images")
	}
	mean, std := make([]float32, c), make([]float32, c)
	if norm.Channels() == 0 {
		lo, hi := pix[0], pix[0]
		for _, v := range pix {
			lo, hi = min(lo, v), max(hi, v)
		}
		for ch := range c {
			mean[ch], std[ch] = lo, max(hi-lo, 1e-12)
		}
	} else {
		if err := norm.validate(c); err != nil {
			return fmt.Errorf("data: grid: %w", err)
		}
		copy(mean, norm.Mean)
		copy(std, norm.Std)
	}

	cols = min(cols, n)
	rows := (n + cols - 1) / cols
	cw, chh := wd*scale+pad, h*scale+pad
	img := image.NewRGBA(image.Rect(0, 0, cols*cw+pad, rows*chh+pad))
	sep := color.RGBA{128, 128, 128, 255}
	for i := range img.Pix {
		img.Pix[i] = sep.R
	}
	for k := 0; k < n; k++ {
		ox, oy := pad+(k%cols)*cw, pad+(k/cols)*chh
		for y := 0; y < h; y++ {
			for x := 0; x < wd; x++ {
				var rgb [3]uint8
				for ch := 0; ch < c; ch++ {
					v := pix[((k*c+ch)*h+y)*wd+x]*std[ch] + mean[ch]
					rgb[ch] = uint8(min(max(v, 0), 1)*255 + 0.5)
				}
				if c == 1 {
					rgb[1], rgb[2] = rgb[0], rgb[0]
				}
				col := color.RGBA{rgb[0], rgb[1], rgb[2], 255}
				for dy := 0; dy < scale; dy++ {
					for dx := 0; dx < scale; dx++ {
						img.SetRGBA(ox+x*scale+dx, oy+y*scale+dy, col)
					}
				}
			}
		}
	}
	return png.Encode(w, img)
}

// WriteClassGrid draws the first perClass examples of each class, one class per row (in label
// order), as a PNG.
func (d *TensorDataset) WriteClassGrid(w io.Writer, perClass int, opts GridOptions) error {
	if perClass <= 0 {
		return fmt.Errorf("data: grid: perClass = %d, want > 0", perClass)
	}
	var labels []int64
	if err := bridge.Try(func() { labels = d.Labels.Int64s() }); err != nil {
		return err
	}
	k := len(d.Classes)
	for _, l := range labels {
		k = max(k, int(l)+1)
	}
	picked := make([][]int64, k)
	for i, l := range labels {
		if l >= 0 && len(picked[l]) < perClass {
			picked[l] = append(picked[l], int64(i))
		}
	}
	// Rows are padded with the row's last example so that each class starts a new row.
	var idx []int64
	for _, row := range picked {
		for j := 0; j < perClass && len(row) > 0; j++ {
			idx = append(idx, row[min(j, len(row)-1)])
		}
	}
	if len(idx) == 0 {
		return fmt.Errorf("data: grid: dataset is empty")
	}
	var images *bridge.Tensor
	if err := bridge.Try(func() { images, _ = d.Batch(idx) }); err != nil {
		return err
	}
	opts.Cols = perClass
	return WriteGrid(w, images, d.Norm, opts)
}

// SaveClassGrid writes WriteClassGrid's PNG to a file.
func (d *TensorDataset) SaveClassGrid(path string, perClass int, opts GridOptions) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = d.WriteClassGrid(bw, perClass, opts)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
