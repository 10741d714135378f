package bridge_test

import (
	"testing"

	. "github.com/hotcb/hotcb/bridge"
)

// Go-side micro-benchmarks of the bridge's per-call cost (`go test -bench . ./bridge`); the
// comparison with a C++ loop lives in bench/.

func BenchmarkAddSmall(b *testing.B) {
	x, y := Ones(Shape{4}), Ones(Shape{4})
	b.ReportAllocs()
	for b.Loop() {
		x.Add(y)
	}
}

func BenchmarkShape(b *testing.B) {
	x := Ones(Shape{2, 3, 4})
	b.ReportAllocs()
	for b.Loop() {
		x.Shape()
	}
}

func BenchmarkInPlaceAdd(b *testing.B) {
	x, y := Ones(Shape{4}), Ones(Shape{4})
	b.ReportAllocs()
	for b.Loop() {
		x.AddInPlace(y, 0.5)
	}
}

// BenchmarkAddSmallScoped runs the ops in scopes of 64, as a training step would.
func BenchmarkAddSmallScoped(b *testing.B) {
	x, y := Ones(Shape{4}), Ones(Shape{4})
	b.ReportAllocs()
	for b.Loop() {
		Scope(func() {
			for range 64 {
				x.Add(y)
			}
		})
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/add")
}

func BenchmarkAddSmallFree(b *testing.B) {
	x, y := Ones(Shape{4}), Ones(Shape{4})
	b.ReportAllocs()
	for b.Loop() {
		x.Add(y).Free()
	}
}

// BenchmarkScopeEmpty is the fixed cost of a Scope around a step.
func BenchmarkScopeEmpty(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Scope(func() {})
	}
}
