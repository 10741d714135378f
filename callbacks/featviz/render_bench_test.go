package featviz

import (
	"bytes"
	"image/png"
	"math/rand/v2"
	"testing"
)

// BenchmarkRenderEncode is the writer's work for one frame of the SmallCNN's first convolution
// with the defaults (1 sample, 16 of 16 channels, 28×28 at auto scale 2): draw, then PNG-encode
// (paletted, best speed, the encoder's buffers reused as the writer does).
func BenchmarkRenderEncode(b *testing.B) {
	shape := []int64{1, 16, 28, 28}
	data := make([]float32, 16*28*28)
	for i := range data {
		data[i] = rand.Float32()
	}
	fr := &frame{layer: "features.0", kind: "Conv2d", full: []int64{64, 16, 28, 28}, shape: shape, data: data, channels: 16}
	var drawn, encoded int64
	enc := png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &onePool{}}
	for b.Loop() {
		img, err := render(fr)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := enc.Encode(&buf, img); err != nil {
			b.Fatal(err)
		}
		drawn, encoded = int64(img.Rect.Dx()*img.Rect.Dy()), int64(buf.Len())
	}
	b.ReportMetric(float64(drawn), "pixels")
	b.ReportMetric(float64(encoded), "png-bytes")
}
