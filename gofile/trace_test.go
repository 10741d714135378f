package gofile_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/torchenv"
)

// panicky panics in different ways, by event; the line of each panic is marked with a comment.
const panicky = `package pk

import (
	"fmt"

	"github.com/hotcb/hotcb/torchenv"
)

type P struct {
	Id   string ` + "`hotcb:\"id\"`" + `
	m    map[string]int
	xs   []int
	Boom bool
}

func (p *P) ID() string { return p.Id }

func (p *P) at(i int) int {
	return p.xs[i] // at
}

func (p *P) Handle(event string, env *torchenv.Env) error {
	switch event {
	case "map":
		p.m["k"] = 1 // map
	case "index":
		fmt.Sprint("before")
		_ = p.at(3)
	case "value":
		panic(fmt.Sprintf("bad step %d", env.Step)) // value
	case "closure":
		f := func() {
			var e *torchenv.Env
			_ = e.Step // nil
		}
		f()
	case "recovered":
		func() {
			defer func() { recover() }()
			panic("caught")
		}()
		x := 1
		_ = x
		panic("after a recovered one") // again
	}
	return nil
}

func (p *P) SetParams(m map[string]any) error {
	if m["boom"] != nil {
		var arr []string
		_ = arr[len(m)] // params
	}
	return nil
}
`

func loadPanicky(t *testing.T) (callback.HotCallback, string) {
	p := write(t, t.TempDir(), "panicky.go", panicky)
	cb, err := load(gofile.NewLoader(gofile.Options{}), p, "P", "pk", nil)
	require.NoError(t, err)
	t.Cleanup(func() { cb.(callback.Closer).Close() })
	return cb, p
}

func line(t *testing.T, src, mark string) int {
	for i, l := range strings.Split(src, "\n") {
		if strings.HasSuffix(l, "// "+mark) {
			return i + 1
		}
	}
	t.Fatalf("no %s", mark)
	return 0
}

// A panic in interpreted code comes back as the call's error, a *gofile.PanicError naming the
// file and the line of the statement that panicked, for panics the code makes and runtime errors
// (nil map write, index out of range, nil pointer) alike; its frames go through the callers.
func TestPanicsSayWhereInTheFile(t *testing.T) {
	cb, path := loadPanicky(t)
	env := &torchenv.Env{Step: 7}
	for _, c := range []struct {
		event, mark, value string
		frames             []string
	}{
		{"map", "map", "assignment to entry in nil map", []string{"(*P).Handle"}},
		{"index", "at", "index out of range", []string{"(*P).at", "(*P).Handle"}},
		{"value", "value", "bad step 7", []string{"(*P).Handle"}},
		// yaegi's nil pointer dereference
		{"closure", "nil", "reflect: call of reflect.Value.Field on zero Value", []string{"(*P).Handle.func1", "(*P).Handle"}},
		{"recovered", "again", "after a recovered one", []string{"(*P).Handle"}},
	} {
		t.Run(c.event, func(t *testing.T) {
			err := cb.Handle(c.event, env)
			var pe *gofile.PanicError
			require.ErrorAs(t, err, &pe)
			where := fmt.Sprintf("%s:%d", path, line(t, panicky, c.mark))
			require.Contains(t, err.Error(), "panic at "+where+" in "+c.frames[0]+": ")
			require.Contains(t, err.Error(), c.value)
			require.Len(t, pe.Frames, len(c.frames), "%q", pe.Frames)
			for i, f := range c.frames {
				require.True(t, strings.HasPrefix(pe.Frames[i], path+":"), pe.Frames[i])
				require.True(t, strings.HasSuffix(pe.Frames[i], " in "+f), pe.Frames[i])
			}
			require.NotEmpty(t, pe.Stack)
		})
	}
	var re runtime.Error
	require.True(t, errors.As(cb.Handle("map", env), &re), "a runtime error stays one")
	require.NoError(t, cb.Handle("none", env), "the callback goes on working")

	err := cb.SetParams(map[string]any{"boom": true})
	require.ErrorContains(t, err, fmt.Sprintf("panic at %s:%d in (*P).SetParams: ", path, line(t, panicky, "params")))
}

// A panic while the file loads — in a package variable, an init function or a constructor —
// fails the load with the line.
func TestPanicWhileLoadingSaysWhere(t *testing.T) {
	dir := t.TempDir()
	initPanic := write(t, dir, "initp.go", `package ip

import "github.com/hotcb/hotcb/torchenv"

var table map[string]int

func init() {
	table["x"] = 1
}

type C struct{}

func (c *C) ID() string                                { return "c" }
func (c *C) Handle(event string, env *torchenv.Env) error { return nil }
func (c *C) SetParams(p map[string]any) error            { return nil }
`)
	_, err := load(gofile.NewLoader(gofile.Options{}), initPanic, "C", "c", nil)
	require.ErrorContains(t, err, initPanic+":8 in init: panic: assignment to entry in nil map")

	ctorSrc := `package ct

import "github.com/hotcb/hotcb/callback"

func New(id string, init map[string]any) (callback.HotCallback, error) {
	var xs []int
	_ = xs[2]
	return nil, nil
}
`
	ctor := write(t, dir, "ctor.go", ctorSrc)
	_, err = load(gofile.NewLoader(gofile.Options{}), ctor, "New", "c", nil)
	require.ErrorContains(t, err, "index out of range")
	require.ErrorContains(t, err, "(at "+ctor+":7 in New)")
}

// The names the instrumentation declares cannot be used by the file.
func TestReservedNames(t *testing.T) {
	src := strings.Replace(panicky, "x := 1", "hotcbTraceF := 1 // R", 1)
	p := write(t, t.TempDir(), "r.go", src)
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "P", "pk", nil)
	require.ErrorContains(t, err, fmt.Sprintf("%s:%d:3: the name hotcbTraceF is reserved", p, line(t, src, "R")))
}

// The file is interpreted instrumented; the positions in the interpreter's errors are still the
// file's, columns included.
func TestInterpreterErrorsKeepTheFilePositions(t *testing.T) {
	src := strings.Replace(panicky, "\t\tfmt.Sprint(\"before\")", "\t\tfmt.Sprint(\"before\"); var s string = 3 // bad", 1)
	p := write(t, t.TempDir(), "bad.go", src)
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "P", "pk", nil)
	col := strings.Index(strings.Split(src, "\n")[line(t, src, "bad")-1], "3 //") + 1
	require.ErrorContains(t, err, fmt.Sprintf("%s:%d:%d: ", p, line(t, src, "bad"), col))
}
