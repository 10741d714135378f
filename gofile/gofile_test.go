package gofile_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/torchenv"
)

const structSrc = `package probe

import (
	"fmt"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// Probe counts events and reports the loss.
type Probe struct {
	Name  string ` + "`hotcb:\"id\"`" + `
	Every int    ` + "`hotcb:\"every,min=1\"`" + `
	Label string
	seen  int
}

func (p *Probe) ID() string { return p.Name }

func (p *Probe) Handle(event string, env *torchenv.Env) error {
	p.seen++
	if env.Step%int64(p.Every) == 0 && env.Loss != nil {
		env.Logf("%s/%s %s step=%d loss=%.2f seen=%d", p.Name, p.Label, event, env.Step, env.Loss.Item(), p.seen)
	}
	if event == "explode" {
		return fmt.Errorf("exploded at %d", env.Step)
	}
	_ = bridge.Ones(bridge.Shape{2})
	return nil
}

func (p *Probe) SetParams(m map[string]any) error { return params.Decode(m, p) }

func (p *Probe) Close() error { env := p.Label; _ = env; return nil }
`

func write(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(src), 0o600))
	return p
}

func load(l *gofile.Loader, path, symbol, id string, init map[string]any) (callback.HotCallback, error) {
	return l.Load(callback.Target{Kind: "go_file", Path: path, Symbol: symbol}, id, init)
}

func TestStructCallback(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "probe.go", structSrc)
	sources := filepath.Join(dir, "hotcb.sources")
	l := gofile.NewLoader(gofile.Options{SourcesDir: sources})
	cb, err := load(l, p, "Probe", "pr", map[string]any{"every": 2, "label": "x"})
	require.NoError(t, err)
	require.Equal(t, "pr", cb.ID(), "the loader sets the id field")
	var lines []string
	env := &torchenv.Env{Loss: bridge.Scalar(1.5), Log: func(s string) { lines = append(lines, s) }}
	for env.Step = 0; env.Step < 4; env.Step++ {
		require.NoError(t, cb.Handle("train_step_end", env))
	}
	require.Equal(t, []string{"pr/x train_step_end step=0 loss=1.50 seen=1", "pr/x train_step_end step=2 loss=1.50 seen=3"}, lines)
	require.ErrorContains(t, cb.Handle("explode", env), "exploded at 4")
	require.NoError(t, cb.SetParams(map[string]any{"every": 1}))
	require.ErrorContains(t, cb.SetParams(map[string]any{"every": 0}), `param "every"`)
	closer, ok := cb.(callback.Closer)
	require.True(t, ok)
	require.NoError(t, closer.Close())

	src := cb.(gofile.Sourced).Source()
	sum := sha256.Sum256([]byte(structSrc))
	require.Equal(t, hex.EncodeToString(sum[:]), src.SHA256)
	captured, err := os.ReadFile(src.CapturedPath)
	require.NoError(t, err)
	require.Equal(t, structSrc, string(captured), "the captured bytes equal the file")
	require.Equal(t, filepath.Join(sources, src.SHA256+".go"), src.CapturedPath)

	// the original disappears: the capture still loads
	require.NoError(t, os.Remove(p))
	_, err = load(l, p, "Probe", "pr", nil)
	require.ErrorContains(t, err, "not found")
	again, err := load(l, src.CapturedPath, "Probe", "pr", map[string]any{"every": 1})
	require.NoError(t, err)
	require.Equal(t, "pr", again.ID())
}

func TestConstructorCallback(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "ctor.go", `package ctor

import (
	"errors"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/torchenv"
)

type counter struct {
	id string
	n  int
}

func (c *counter) ID() string                               { return c.id }
func (c *counter) Handle(ev string, env *torchenv.Env) error { c.n++; return nil }
func (c *counter) SetParams(m map[string]any) error         { return nil }
func (c *counter) OnAttach(env *torchenv.Env) error         { env.Logf("attached %s", c.id); return nil }

func New(id string, init map[string]any) (callback.HotCallback, error) {
	if init["fail"] != nil {
		return nil, errors.New("asked to fail")
	}
	return &counter{id: id}, nil
}
`)
	l := gofile.NewLoader(gofile.Options{})
	cb, err := load(l, p, "New", "c1", nil)
	require.NoError(t, err)
	require.Equal(t, "c1", cb.ID())
	var lines []string
	require.NoError(t, cb.(callback.Attacher).OnAttach(&torchenv.Env{Log: func(s string) { lines = append(lines, s) }}))
	require.Empty(t, lines, "a constructor's OnAttach is not reachable (documented limitation)")
	require.NoError(t, cb.Handle("x", &torchenv.Env{}))
	_, err = load(l, p, "New", "c1", map[string]any{"fail": true})
	require.ErrorContains(t, err, `New("c1", init): asked to fail`)
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, src, symbol string
		init              map[string]any
		want              []string
	}{
		{"syntax", "package x\nfunc (\n", "X", nil, []string{"syntax.go:2:"}},
		{"type error", "package x\nimport \"github.com/hotcb/hotcb/callback\"\nfunc New(id string, init map[string]any) (callback.HotCallback, error) {\n\treturn nil, undefinedThing\n}\n", "New", nil, []string{"type error.go:4:", "undefined"}},
		{"missing symbol", structSrc, "Nope", nil, []string{`no symbol "Nope" in the file (it declares: Probe (struct))`}},
		{"constant", "package x\nconst C = 1\n", "C", nil, []string{"C is a constant, not a struct type or a constructor function"}},
		{"interface", "package x\ntype I interface{ ID() string }\n", "I", nil, []string{"I is a interface type"}},
		{"missing method", "package x\nimport \"github.com/hotcb/hotcb/torchenv\"\ntype T struct{}\nfunc (T) ID() string { return \"\" }\nfunc (T) Handle(e string, env *torchenv.Env) error { return nil }\n", "T",
			nil, []string{"type T does not implement callback.HotCallback: missing method SetParams(params map[string]any) error"}},
		{"wrong ctor", "package x\nfunc New(id string) {}\n", "New", nil, []string{"New must be func(id string, init map[string]any) (callback.HotCallback, error)"}},
		{"init type", structSrc, "Probe", map[string]any{"every": "often"}, []string{`init: param "every"`}},
		{"init unknown", structSrc, "Probe", map[string]any{"evry": 3}, []string{`"evry"`, "unknown key"}},
		{"restricted", "package x\nimport \"os/exec\"\nvar _ = exec.Command\n", "X", nil, []string{`restricted.go:2:8: import "os/exec" is not allowed`}},
		{"unnamed params", "package x\nimport \"github.com/hotcb/hotcb/torchenv\"\ntype T struct{ n int }\nfunc (t *T) ID() string { return \"\" }\nfunc (t *T) Handle(string, *torchenv.Env) error { t.n++; return nil }\nfunc (t *T) SetParams(m map[string]any) error { return nil }\n", "T",
			nil, []string{"unnamed params.go:5:20: Handle: name every parameter"}},
		{"unknown package", "package x\nimport \"github.com/evil/pkg\"\n", "X", nil, []string{`package "github.com/evil/pkg" cannot be imported`}},
	}
	l := gofile.NewLoader(gofile.Options{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, dir, c.name+".go", c.src)
			_, err := load(l, p, c.symbol, "id", c.init)
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	_, err := load(l, filepath.Join(dir, "missing.go"), "X", "id", nil)
	require.ErrorContains(t, err, "missing.go not found")
	_, err = load(l, filepath.Join(dir, "x.py"), "X", "id", nil)
	require.ErrorContains(t, err, "is not a .go file")
}

func TestFullStdlibOptionAndPermissions(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import (
	"os/exec"

	"github.com/hotcb/hotcb/torchenv"
)

type X struct{}

func (X) ID() string                                { return exec.Command("true").Path }
func (X) Handle(ev string, env *torchenv.Env) error { return nil }
func (X) SetParams(m map[string]any) error          { return nil }
`
	p := write(t, dir, "exec.go", src)
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "X", "id", nil)
	require.ErrorContains(t, err, "not allowed")
	cb, err := load(gofile.NewLoader(gofile.Options{FullStdlib: true}), p, "X", "id", nil)
	require.NoError(t, err, "the full standard library is unlocked by the option")
	require.True(t, strings.HasSuffix(cb.ID(), "true"))

	require.NoError(t, os.Chmod(p, 0o666))
	_, err = load(gofile.NewLoader(gofile.Options{FullStdlib: true}), p, "X", "id", nil)
	require.ErrorContains(t, err, "writable by group or others")
	_, err = load(gofile.NewLoader(gofile.Options{FullStdlib: true, AllowAnyOwner: true}), p, "X", "id", nil)
	require.NoError(t, err)
}

// TestFullStdlibKeepsWholePackages: the trusted mode adds yaegi's unrestricted symbols (the real
// os.Exit, log.Fatal, ...) to the standard packages instead of replacing them: before, its "os"
// held Exit and FindProcess only, and a trusted callback could not even read a file.
func TestFullStdlibKeepsWholePackages(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "trusted.go", `package x

import (
	"log"
	"os"
	"os/exec"

	"github.com/hotcb/hotcb/torchenv"
)

type X struct{ Path string }

func (x *X) ID() string { return "x" }
func (x *X) Handle(ev string, env *torchenv.Env) error {
	b, err := os.ReadFile(x.Path)
	if err != nil {
		return err
	}
	log.SetOutput(os.Stderr)
	env.Logf("%d bytes, %s", len(b), exec.Command("true").Path)
	return nil
}
func (x *X) SetParams(m map[string]any) error { return nil }
`)
	cb, err := load(gofile.NewLoader(gofile.Options{FullStdlib: true}), p, "X", "x", map[string]any{"path": p})
	require.NoError(t, err)
	var lines []string
	require.NoError(t, cb.Handle("tick", &torchenv.Env{Log: func(s string) { lines = append(lines, s) }}))
	require.Len(t, lines, 1)
	require.Contains(t, lines[0], " bytes, ")
}
