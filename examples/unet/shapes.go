package main

import (
	"math/rand/v2"

	"github.com/hotcb/hotcb/bridge"
)

// The segmentation task: grey-level images of 1 to 3 filled circles and squares of random size,
// brightness and position on a noisy background (later shapes cover earlier ones). The mask
// labels each pixel background (0), circle (1) or square (2): the network has to tell the shapes
// apart by their outline, since their brightness says nothing about which is which.

const (
	background = iota
	circle
	square
	numClasses
)

var classNames = [numClasses]string{"background", "circle", "square"}

// shapes draws n images of size×size: x [n, 1, size, size] float32, y [n, size, size] int64.
func shapes(rng *rand.Rand, n, size int64) (x, y *bridge.Tensor) {
	return drawShapes(rng, n, size, 0.2)
}

// drawShapes draws n images with texture noise of standard deviation texture on the background
// and the shapes (none when 0: flat shapes on black, the denoiser's clean images).
func drawShapes(rng *rand.Rand, n, size int64, texture float64) (x, y *bridge.Tensor) {
	img := make([]float32, n*size*size)
	mask := make([]int64, n*size*size)
	noise := func() float32 {
		if texture == 0 {
			return 0
		}
		return float32(rng.NormFloat64() * texture)
	}
	for i := range n {
		im, mk := img[i*size*size:(i+1)*size*size], mask[i*size*size:(i+1)*size*size]
		for p := range im {
			im[p] = noise()
		}
		for range 1 + rng.IntN(3) {
			kind := circle + rng.IntN(2)
			r := 3 + rng.Float64()*float64(size)/6 // radius, or half the side
			cx, cy := rng.Float64()*float64(size), rng.Float64()*float64(size)
			v := float32(0.6 + 0.6*rng.Float64())
			for py := range size {
				for px := range size {
					dx, dy := float64(px)+0.5-cx, float64(py)+0.5-cy
					in := dx*dx+dy*dy <= r*r
					if kind == square {
						in = dx >= -r && dx < r && dy >= -r && dy < r
					}
					if in {
						im[py*size+px] = v + noise()
						mk[py*size+px] = int64(kind)
					}
				}
			}
		}
	}
	return bridge.FromSlice(img, n, 1, size, size), bridge.FromSlice(mask, n, size, size)
}
