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

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func init() {
	callbacks.Register("github.com/hotcb/hotcb/callbacks/heartbeat", "Heartbeat", "heartbeat", "HeartbeatCallback",
		func(id string, init map[string]any) (callback.HotCallback, error) { return New(id, init) })
}

// Params are the heartbeat's parameters.
type Params struct {
	// Every is the step interval: a line for each event of the steps divisible by it.
	Every int64 `hotcb:"every,min=1"`
	// Message is appended to each line.
	Message string `hotcb:"message"`
}

// Heartbeat logs a line every N steps.
type Heartbeat struct {
	id  string
	p   Params
	out io.Writer // when the env has no Log
}

// New builds a heartbeat with every=50 and no message, updated by init.
func New(id string, init map[string]any) (*Heartbeat, error) {
	h := &Heartbeat{id: id, p: Params{Every: 50}, out: os.Stdout}
	if err := h.SetParams(init); err != nil {
		return nil, err
	}
	return h, nil
}

// ID returns the callback's id.
func (h *Heartbeat) ID() string { return h.id }

// Params returns the current parameters.
func (h *Heartbeat) Params() Params { return h.p }

// SetParams decodes p over the current parameters, all or nothing (params.Decode).
func (h *Heartbeat) SetParams(p map[string]any) error {
	return params.Decode(p, &h.p, params.ScalarsAsStrings())
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
	line := "[" + h.id + "] " + event + " step=" + strconv.FormatInt(step, 10)
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
