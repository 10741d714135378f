// Package heartbeat is hotcb's `heartbeat` callback (HeartbeatCallback): every N steps it logs
// "[id] <event> step=<n>" and an optional message for each event it sees, through the env's
// Log (stdout when there is none) — a cheap way to see that a run, and its control plane, are
// alive.
package heartbeat

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/torchenv"
)

func init() { callbacks.Provide(spec.Heartbeat, New) }

// Params are the heartbeat's parameters (spec.HeartbeatParams).
type Params = spec.HeartbeatParams

// Heartbeat logs a line every N steps.
type Heartbeat struct {
	callbacks.Base[Params]
	p   Params
	out io.Writer // when the env has no Log
}

// New builds a heartbeat with spec.Heartbeat's defaults updated by init.
func New(id string, init map[string]any) (*Heartbeat, error) {
	h := &Heartbeat{out: os.Stdout}
	if err := h.Init(id, &h.p, spec.Heartbeat, init, nil); err != nil {
		return nil, err
	}
	return h, nil
}

// Handle logs the line when the step is a multiple of every.
func (h *Heartbeat) Handle(event string, env *torchenv.Env) error {
	var step int64
	if env != nil {
		step = env.Step
	}
	if step%h.p.Every != 0 {
		return nil
	}
	line := "[" + h.ID() + "] " + event + " step=" + strconv.FormatInt(step, 10)
	if h.p.Message != "" {
		line += " " + h.p.Message
	}
	if env != nil && env.Log != nil {
		env.Log(line)
		return nil
	}
	_, err := fmt.Fprintln(h.out, line)
	return err
}
