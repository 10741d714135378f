package optim

// #cgo LDFLAGS: -lm
// #include <math.h>
import "C"

// pow and cos are the C library's: what Python's float ** and math.cos call, so the scalars
// torch.optim computes in Python (bias corrections, schedules) come out the same to the last bit.
// Go's math.Pow and math.Cos may differ from them in the last bit.
func pow(x, y float64) float64 { return float64(C.pow(C.double(x), C.double(y))) }

func cos(x float64) float64 { return float64(C.cos(C.double(x))) }
