package gofile_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/torchenv"
)

const spinSrc = `package spin

import "github.com/hotcb/hotcb/torchenv"

type Spin struct {
	Id string ` + "`hotcb:\"id\"`" + `
	n  int
}

func (s *Spin) ID() string { return s.Id }

func (s *Spin) Handle(event string, env *torchenv.Env) error {
	if event == "hang" {
		for {
			s.n++
		}
	}
	return nil
}

func (s *Spin) SetParams(params map[string]any) error { return nil }
`

// A call looping forever in interpreted code is abandoned: it returns ErrAbandoned, later calls
// return at once, and the interpreter's goroutines end.
func TestAbandonAStuckCall(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := gofile.NewLoader(gofile.Options{})
	cb, err := load(l, write(t, t.TempDir(), "spin.go", spinSrc), "Spin", "s", nil)
	require.NoError(t, err)
	ab := cb.(callback.Abandoner)
	env := &torchenv.Env{Step: 42}
	require.NoError(t, cb.Handle("train_step_end", env))
	_, _, _, running := ab.Running()
	require.False(t, running, "between calls")

	done := make(chan error, 1)
	go func() { done <- cb.Handle("hang", env) }()
	require.Eventually(t, func() bool { _, _, _, ok := ab.Running(); return ok }, 5*time.Second, time.Millisecond)
	call, step, since, _ := ab.Running()
	require.Equal(t, "Handle(hang)", call)
	require.Equal(t, int64(42), step)
	require.WithinDuration(t, time.Now(), since, 5*time.Second)
	select {
	case <-done:
		t.Fatal("the loop returned by itself")
	case <-time.After(50 * time.Millisecond):
	}
	require.True(t, ab.Abandon())
	require.False(t, ab.Abandon(), "once")
	select {
	case err := <-done:
		require.ErrorIs(t, err, gofile.ErrAbandoned)
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned call did not return")
	}
	require.True(t, ab.Abandoned())
	require.ErrorIs(t, cb.Handle("train_step_end", env), gofile.ErrAbandoned)
	require.NoError(t, cb.(callback.Closer).Close())
}

// Closing a callback ends the goroutine its guard parks.
func TestCloseReleasesTheGuard(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	l := gofile.NewLoader(gofile.Options{})
	cb, err := load(l, write(t, t.TempDir(), "spin.go", spinSrc), "Spin", "s", nil)
	require.NoError(t, err)
	require.NoError(t, cb.Handle("x", &torchenv.Env{}))
	require.NoError(t, cb.(callback.Closer).Close())
	require.False(t, cb.(callback.Abandoner).Abandoned())
}

// A file whose init, package variable or constructor loops forever fails to load after
// BuildTimeout instead of hanging the safe point that loads it.
func TestBuildTimeout(t *testing.T) {
	for name, src := range map[string]string{
		"init": `package p

import "github.com/hotcb/hotcb/torchenv"

func init() {
	for {
	}
}

type C struct{}

func (c *C) ID() string                                   { return "c" }
func (c *C) Handle(event string, env *torchenv.Env) error { return nil }
func (c *C) SetParams(params map[string]any) error        { return nil }
`,
		"constructor": `package p

import (
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/torchenv"
)

type C struct{}

func (c *C) ID() string                                   { return "c" }
func (c *C) Handle(event string, env *torchenv.Env) error { return nil }
func (c *C) SetParams(params map[string]any) error        { return nil }

func New(id string, init map[string]any) (callback.HotCallback, error) {
	n := 0
	for {
		n++
	}
	return &C{}, nil
}
`,
	} {
		t.Run(name, func(t *testing.T) {
			symbol := "C"
			if name == "constructor" {
				symbol = "New"
			}
			l := gofile.NewLoader(gofile.Options{BuildTimeout: 200 * time.Millisecond})
			t0 := time.Now()
			_, err := load(l, write(t, t.TempDir(), "p.go", src), symbol, "c", nil)
			require.ErrorContains(t, err, "loading it ran for 200ms without finishing")
			require.Less(t, time.Since(t0), 10*time.Second)
		})
	}
}
