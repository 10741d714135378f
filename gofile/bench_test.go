package gofile_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/torchenv"
)

const stepReader = `package b

import "github.com/hotcb/hotcb/torchenv"

type S struct{ last int64 }

func (s *S) ID() string { return "s" }
func (s *S) Handle(event string, env *torchenv.Env) error { s.last = env.Step; return nil }
func (s *S) SetParams(p map[string]any) error { return nil }
`

// BenchmarkInterpretedHandle is the cost of one dispatch to an interpreted callback that reads
// env.Step and returns (goal ≤ 5 µs).
func BenchmarkInterpretedHandle(b *testing.B) {
	p := filepath.Join(b.TempDir(), "s.go")
	os.WriteFile(p, []byte(stepReader), 0o600)
	cb, err := gofile.NewLoader(gofile.Options{}).Load(callback.Target{Kind: "go_file", Path: p, Symbol: "S"}, "s", nil)
	if err != nil {
		b.Fatal(err)
	}
	env := &torchenv.Env{}
	b.ReportAllocs()
	for b.Loop() {
		env.Step++
		cb.Handle("train_step_end", env)
	}
}

// hundredLines is a callback of about 100 lines (helpers, a table, string formatting).
func hundredLines() string {
	var sb strings.Builder
	sb.WriteString(stepReader)
	for i := 0; i < 23; i++ {
		fmt.Fprintf(&sb, "\nfunc helper%d(x int) int {\n\tif x > %d {\n\t\treturn x - %d\n\t}\n\treturn x + %d\n}\n", i, i, i, i)
	}
	return sb.String()
}

// BenchmarkLoad100Lines is the time to load (parse, check, interpret, instantiate) a 100-line
// callback — what a hot reload costs at the safe point where it happens.
func BenchmarkLoad100Lines(b *testing.B) {
	src := hundredLines()
	if n := strings.Count(src, "\n"); n < 100 {
		b.Fatalf("only %d lines", n)
	}
	p := filepath.Join(b.TempDir(), "h.go")
	os.WriteFile(p, []byte(src), 0o600)
	l := gofile.NewLoader(gofile.Options{})
	for b.Loop() {
		if _, err := l.Load(callback.Target{Kind: "go_file", Path: p, Symbol: "S"}, "s", nil); err != nil {
			b.Fatal(err)
		}
	}
}
