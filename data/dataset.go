package data

import (
	"fmt"
	"math"

	"github.com/hotcb/hotcb/bridge"
)

// Dataset is anything a Loader can draw examples from.
type Dataset interface {
	Len() int
	// Example returns example i: its input and its target (for classification, a 0-d int64).
	Example(i int) (x, y *bridge.Tensor)
}

// Batcher is implemented by datasets that build a whole batch at once (TensorDataset does so
// with two IndexSelects); the Loader prefers it to stacking Examples one by one.
type Batcher interface {
	Batch(indices []int64) (x, y *bridge.Tensor)
}

// Norm is a per-channel normalisation: a stored pixel is (raw - Mean[c]) / Std[c], where raw is
// the pixel's intensity in [0, 1].
type Norm struct {
	Mean, Std []float32
}

// Channels is the number of channels the normalisation describes.
func (n Norm) Channels() int { return len(n.Mean) }

func (n Norm) validate(channels int) error {
	if len(n.Mean) != channels || len(n.Std) != channels {
		return fmt.Errorf("normalisation has %d means and %d stds, images have %d channels", len(n.Mean), len(n.Std), channels)
	}
	for c, s := range n.Std {
		if !(s > 0) || math.IsInf(float64(s), 0) || math.IsNaN(float64(n.Mean[c])) || math.IsInf(float64(n.Mean[c]), 0) {
			return fmt.Errorf("normalisation of channel %d is not usable (mean %v, std %v)", c, n.Mean[c], s)
		}
	}
	return nil
}

// Identity is the normalisation that leaves raw [0, 1] intensities unchanged.
func Identity(channels int) Norm {
	n := Norm{Mean: make([]float32, channels), Std: make([]float32, channels)}
	for c := range n.Std {
		n.Std[c] = 1
	}
	return n
}

// TensorDataset is a dataset held in two tensors. Images are float32 [N,C,H,W] normalised
// with Norm; Labels are int64 class indices [N]; Classes names them.
type TensorDataset struct {
	Images  *bridge.Tensor
	Labels  *bridge.Tensor
	Classes []string
	Norm    Norm
}

// NewTensorDataset checks that images [N,…] and labels [N] agree and wraps them. norm describes
// how images were normalised (Identity(C) if they hold raw intensities).
func NewTensorDataset(images, labels *bridge.Tensor, classes []string, norm Norm) (*TensorDataset, error) {
	var is, ls bridge.Shape
	var ldt bridge.DType
	if err := bridge.Try(func() { is, ls, ldt = images.Shape(), labels.Shape(), labels.DType() }); err != nil {
		return nil, err
	}
	if len(is) < 1 || len(ls) != 1 || is[0] != ls[0] {
		return nil, fmt.Errorf("data: images %v and labels %v do not describe the same N examples", is, ls)
	}
	if ldt != bridge.Int64 {
		return nil, fmt.Errorf("data: labels are %v, want int64", ldt)
	}
	if len(is) == 4 {
		if err := norm.validate(int(is[1])); err != nil {
			return nil, fmt.Errorf("data: %w", err)
		}
	}
	return &TensorDataset{Images: images, Labels: labels, Classes: classes, Norm: norm}, nil
}

// Len is the number of examples.
func (d *TensorDataset) Len() int { return int(d.Labels.Size(0)) }

// Example returns image i [C,H,W] (a view) and its label as a 0-d int64 tensor.
func (d *TensorDataset) Example(i int) (x, y *bridge.Tensor) {
	return d.Images.Narrow(0, int64(i), 1).SqueezeDim(0), d.Labels.Narrow(0, int64(i), 1).SqueezeDim(0)
}

// Batch gathers the given examples into new tensors [len(indices),C,H,W] and [len(indices)].
func (d *TensorDataset) Batch(indices []int64) (x, y *bridge.Tensor) {
	idx := bridge.FromSlice(indices)
	if dev := d.Images.Device(); dev != bridge.CPU {
		idx = idx.To(dev)
	}
	x, y = d.Images.IndexSelect(0, idx), d.Labels.IndexSelect(0, idx)
	idx.Free()
	return x, y
}

// Subset returns examples [start, end) as views of the same tensors.
func (d *TensorDataset) Subset(start, end int) *TensorDataset {
	n := int64(end - start)
	return &TensorDataset{
		Images:  d.Images.Narrow(0, int64(start), n),
		Labels:  d.Labels.Narrow(0, int64(start), n),
		Classes: d.Classes,
		Norm:    d.Norm,
	}
}

// To returns the dataset with both tensors on dev (d itself when they are already there).
// A dataset that fits on the GPU is fastest there: batches are then gathered on the device.
func (d *TensorDataset) To(dev bridge.Device) *TensorDataset {
	if d.Images.Device() == dev && d.Labels.Device() == dev {
		return d
	}
	return &TensorDataset{Images: d.Images.To(dev), Labels: d.Labels.To(dev), Classes: d.Classes, Norm: d.Norm}
}

// ClassCounts counts the examples of each class (len(Classes) entries, or more if a label is
// larger).
func (d *TensorDataset) ClassCounts() []int {
	counts := make([]int, len(d.Classes))
	for _, l := range d.Labels.Int64s() {
		for int(l) >= len(counts) {
			counts = append(counts, 0)
		}
		counts[l]++
	}
	return counts
}

// channelTensors returns a and b as [1,C,1,1] float32 tensors on dev.
func channelTensors(dev bridge.Device, a, b []float32) (ta, tb *bridge.Tensor) {
	c := int64(len(a))
	ta = bridge.FromSlice(a, 1, c, 1, 1)
	tb = bridge.FromSlice(b, 1, c, 1, 1)
	if dev != bridge.CPU {
		ta, tb = ta.To(dev), tb.To(dev)
	}
	return ta, tb
}

// Raw returns the images as intensities in [0, 1] (undoing Norm).
func (d *TensorDataset) Raw() *bridge.Tensor {
	std, mean := channelTensors(d.Images.Device(), d.Norm.Std, d.Norm.Mean)
	return d.Images.Mul(std).Add(mean)
}

// Renormalize returns the dataset with its images normalised by n instead of d.Norm — for
// instance a test set put on its training set's statistics: test = test.Renormalize(train.Norm).
func (d *TensorDataset) Renormalize(n Norm) (*TensorDataset, error) {
	if err := n.validate(int(d.Images.Size(1))); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	// x' = (x·s + m - m') / s' = x·(s/s') + (m - m')/s'
	scale := make([]float32, len(n.Mean))
	shift := make([]float32, len(n.Mean))
	for c := range scale {
		scale[c] = d.Norm.Std[c] / n.Std[c]
		shift[c] = (d.Norm.Mean[c] - n.Mean[c]) / n.Std[c]
	}
	ts, tm := channelTensors(d.Images.Device(), scale, shift)
	return &TensorDataset{
		Images:  d.Images.Mul(ts).Add(tm),
		Labels:  d.Labels,
		Classes: d.Classes,
		Norm:    Norm{Mean: append([]float32(nil), n.Mean...), Std: append([]float32(nil), n.Std...)},
	}, nil
}
