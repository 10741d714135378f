package plane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// The two things a training loop can call at a safe point.
const (
	Controller = "controller" // controller.HotController over a run directory's files
	Kernel     = "kernel"     // kernel.Kernel (what `hotcb train` uses)
)

// idle is a compiled callback that does nothing: what is left is the control plane's own cost.
type idle struct{ id string }

func (i idle) ID() string                       { return i.id }
func (idle) Handle(string, *torchenv.Env) error { return nil }
func (idle) SetParams(map[string]any) error     { return nil }

const idlePath, idleSymbol = "bench/plane/idle", "Idle"

// stepReader is the interpreted callback: it reads env.Step and returns, like
// gofile's BenchmarkInterpretedHandle.
const stepReader = `package b

import "github.com/hotcb/hotcb/torchenv"

type S struct{ last int64 }

func (s *S) ID() string { return "s" }
func (s *S) Handle(event string, env *torchenv.Env) error { s.last = env.Step; return nil }
func (s *S) SetParams(p map[string]any) error { return nil }
`

// plane is a controller or a kernel over dir, with a registry that knows the idle callback.
type plane struct {
	target string
	dir    string
	ctl    *controller.HotController // the kernel's own for a kernel
	k      *kernel.Kernel
}

// open creates dir (0700) and starts a controller or kernel on it, watching its files as a
// real run does, resolving module targets in reg (a new registry when nil) to which the idle
// callback is added. A kernel writes the metrics stream, as in a run, unless noMetrics.
func open(target, dir string, reg *callback.Registry, pollEveryStep, noMetrics bool) (*plane, error) {
	if reg == nil {
		reg = callback.NewRegistry()
	}
	if _, err := reg.Lookup(idlePath, idleSymbol); err != nil {
		reg.Register(idlePath, idleSymbol, func(id string, _ map[string]any) (callback.HotCallback, error) { return idle{id}, nil })
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	d := rundir.Dir(dir)
	p := &plane{target: target, dir: dir}
	switch target {
	case Controller:
		c, err := controller.New(controller.Options{CommandsPath: d.Path(rundir.Commands),
			ConfigPath: d.Path(rundir.Config), StatusPath: d.Path(rundir.Status), LogPath: d.Path(rundir.Log),
			SourcesDir: d.Path(rundir.Sources), RunDir: dir, Registry: reg, PollEveryStep: pollEveryStep})
		if err != nil {
			return nil, err
		}
		p.ctl = c
	case Kernel:
		k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{Registry: reg, PollEveryStep: pollEveryStep},
			Metrics: kernel.MetricsOptions{Off: noMetrics}})
		if err != nil {
			return nil, err
		}
		p.k, p.ctl = k, k.Controller()
	default:
		return nil, fmt.Errorf("plane: unknown target %q", target)
	}
	return p, nil
}

func (p *plane) submit(op ops.Op) error {
	op.Module = "cb"
	if p.k != nil {
		return p.k.Submit(op)
	}
	return p.ctl.Submit(op)
}

// load queues the load of a callback (applied at the next safe point).
func (p *plane) load(id string, t ops.CallbackTarget, init map[string]any) error {
	return p.submit(ops.Op{Op: ops.OpLoad, ID: id, Target: &t, Init: init})
}

func (p *plane) loadIdle(n int) error {
	for i := range n {
		if err := p.load(fmt.Sprint("idle", i), ops.CallbackTarget{Kind: ops.KindModule, Path: idlePath, Symbol: idleSymbol}, nil); err != nil {
			return err
		}
	}
	return nil
}

// loadInterpreted writes stepReader to the run directory (0600, as gofile requires) and queues
// its load.
func (p *plane) loadInterpreted(id string) error {
	src := filepath.Join(p.dir, "step_reader.go")
	if err := os.WriteFile(src, []byte(stepReader), 0o600); err != nil {
		return err
	}
	return p.load(id, ops.CallbackTarget{Kind: ops.KindGoFile, Path: src, Symbol: "S"}, nil)
}

// Apply is one safe point.
func (p *plane) Apply(env *torchenv.Env, events ...string) {
	if p.k != nil {
		p.k.Apply(env, events...)
		return
	}
	p.ctl.Apply(env, events...)
}

// enabled checks, after a safe point has applied the loads, that want callbacks are loaded and
// enabled, and names the failures the status holds.
func (p *plane) enabled(want int) error {
	p.ctl.RequestStatus()
	p.Apply(&torchenv.Env{}) // no event: a status snapshot only
	st := p.ctl.Status()
	if st == nil {
		return errors.New("no status after a safe point")
	}
	n := 0
	var bad []error
	for _, c := range st.Callbacks {
		if c.Loaded && c.Enabled {
			n++
		} else {
			bad = append(bad, fmt.Errorf("%s: loaded=%v enabled=%v %s", c.ID, c.Loaded, c.Enabled, c.LastError))
		}
	}
	if n != want {
		// A load that failed leaves no callback behind: its reason is in the log.
		if b, err := os.ReadFile(filepath.Join(p.dir, rundir.Log)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if strings.Contains(l, "failed") {
					bad = append(bad, errors.New(l))
				}
			}
		}
		return fmt.Errorf("%s: %d callbacks enabled, want %d: %w", p.target, n, want, errors.Join(bad...))
	}
	return nil
}

func (p *plane) Close() error {
	if p.k != nil {
		return p.k.Close()
	}
	return p.ctl.Close()
}
