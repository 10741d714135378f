package serve

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hotcb/hotcb/rundir"
)

// Num is a float that JSON carries as a number when finite and as the string "NaN",
// "Infinity" or "-Infinity" otherwise (encoding/json refuses those).
type Num float64

// MarshalJSON implements json.Marshaler.
func (n Num) MarshalJSON() ([]byte, error) {
	f := float64(n)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// Overview is a run at a glance: the header of the page and a row of /api/runs.
type Overview struct {
	Run        string   `json:"run"`
	Dir        string   `json:"dir"`
	Step       int64    `json:"step"` // -1 before anything was written
	Epoch      *float64 `json:"epoch,omitempty"`
	Phase      string   `json:"phase,omitempty"`
	Loss       *Value   `json:"loss,omitempty"`
	LR         *Value   `json:"lr,omitempty"`
	StepsPerS  *Num     `json:"steps_per_s,omitempty"`
	RateFrom   string   `json:"steps_per_s_from,omitempty"` // "timing" (the timing callback's) or "observed" (step over wall time here)
	TotalSteps *int64   `json:"total_steps,omitempty"`
	ETASeconds *Num     `json:"eta_s,omitempty"`
	FreezeMode string   `json:"freeze_mode"`
	Device     string   `json:"device,omitempty"`
	PID        int      `json:"pid,omitempty"`
	StatusAge  *Num     `json:"status_age_s,omitempty"`
	Health     Health   `json:"health"`
	LedgerSeq  int64    `json:"ledger_seq"`
	Ledger     int      `json:"ledger_entries"`
	Failed     int      `json:"ledger_failed"`
	Metrics    []string `json:"metrics"`
	Callbacks  int      `json:"callbacks"`
	Frames     int      `json:"frames"`
}

// Value is a metric's latest value and the step it was read at.
type Value struct {
	Name  string `json:"name"`
	Value Num    `json:"value"`
	Step  int64  `json:"step"`
}

// Health is ok, warn or error, with what is wrong; waiting before a process wrote a status.
type Health struct {
	State    string   `json:"state"`
	Problems []string `json:"problems"`
}

// overview computes the run's overview from what was read.
func (r *run) overview(now time.Time) Overview {
	o := Overview{Run: r.name, Dir: r.dir, Step: -1, FreezeMode: rundir.FreezeOff, Metrics: r.metrics.Names()}
	h := Health{State: "ok", Problems: []string{}}
	worse := func(state, msg string) {
		if state == "error" || h.State == "ok" || h.State == "waiting" {
			h.State = state
		}
		h.Problems = append(h.Problems, msg)
	}
	mstep, last := r.metrics.Last()
	o.Step = mstep
	if name, ok := pickMetric(last, "loss"); ok {
		o.Loss = &Value{Name: name, Value: Num(last[name]), Step: mstep}
		if v := last[name]; math.IsNaN(v) || math.IsInf(v, 0) {
			worse("error", fmt.Sprintf("%s is %v at step %d", name, Num(v), mstep))
		}
	}
	if name, ok := pickMetric(last, "lr"); ok {
		o.LR = &Value{Name: name, Value: Num(last[name]), Step: mstep}
	}
	var extra map[string]any
	r.mu.RLock()
	st, statusErr := r.status.st, r.status.err
	rate := append([]stepAt(nil), r.rate...)
	o.Frames = len(r.frames)
	r.mu.RUnlock()
	if st != nil {
		o.Step = max(o.Step, st.Step)
		if st.Epoch != 0 {
			e := st.Epoch
			o.Epoch = &e
		}
		o.Phase, o.PID, o.Callbacks, extra = st.Phase, st.PID, len(st.Callbacks), st.Extra
		age := Num(now.Sub(st.WrittenAt).Seconds())
		o.StatusAge = &age
		switch {
		case st.Stuck != nil:
			worse("error", "stuck: "+st.Stuck.String())
		case now.Sub(st.WrittenAt) > staleAfter:
			worse("warn", fmt.Sprintf("the status is %s old: the training process may have stopped", now.Sub(st.WrittenAt).Round(time.Second)))
		}
		if st.ControlError != "" {
			worse("warn", "control error: "+st.ControlError)
		}
		for _, cs := range st.Callbacks {
			if cs.Errors > 0 {
				msg := fmt.Sprintf("callback %s: %d errors", cs.ID, cs.Errors)
				if cs.LastError != "" {
					msg += " (last at step " + strconv.FormatInt(cs.LastErrorStep, 10) + ": " + firstLine(cs.LastError) + ")"
				}
				worse("warn", msg)
			}
		}
		if e, ok := extra["ledger_error"].(string); ok && e != "" {
			worse("error", "ledger: "+e)
		}
		if m, ok := extra["freeze_mode"].(string); ok && m != "" {
			o.FreezeMode = m
		}
		if o.LR == nil {
			if lr, ok := optimizerLR(extra); ok {
				o.LR = &Value{Name: "opt main lr", Value: Num(lr), Step: st.Step}
			}
		}
		if d, ok := extra["device"].(string); ok {
			o.Device = d
		}
	} else if statusErr != "" {
		worse("warn", statusErr)
	} else {
		if h.State == "ok" {
			h.State = "waiting"
		}
		h.Problems = append(h.Problems, "no status yet: no training process has written "+rundir.Status)
	}
	if st == nil || extra["freeze_mode"] == nil {
		if fz, err := rundir.ReadFreeze(rundir.Dir(r.dir).Path(rundir.Freeze)); err == nil {
			o.FreezeMode = fz.Mode
		}
	}
	if rec := r.timing.lastRecord(); rec != nil {
		var d string
		if json.Unmarshal(rec["device"], &d) == nil && d != "" {
			o.Device = d
		}
		if v, ok := number(rec["steps_per_s"]); ok && v > 0 && !math.IsInf(v, 0) {
			n := Num(v)
			o.StepsPerS, o.RateFrom = &n, "timing"
		}
	}
	if o.StepsPerS == nil && len(rate) >= 2 {
		a, b := rate[0], rate[len(rate)-1]
		if dt := b.t.Sub(a.t).Seconds(); dt >= 2 && b.step > a.step {
			n := Num(float64(b.step-a.step) / dt)
			o.StepsPerS, o.RateFrom = &n, "observed"
		}
	}
	if total, ok := totalSteps(extra, r.metrics); ok {
		o.TotalSteps = &total
		if o.StepsPerS != nil && *o.StepsPerS > 0 && o.Step >= 0 && total >= o.Step {
			eta := Num(float64(total-o.Step) / float64(*o.StepsPerS))
			o.ETASeconds = &eta
		}
	}
	for _, f := range []*seriesFile{r.timing, r.system} {
		if err := f.readErr(); err != nil {
			worse("warn", err.Error())
		}
	}
	o.LedgerSeq, o.Ledger, o.Failed = r.ledger.summary()
	if o.Failed > 0 {
		worse("warn", fmt.Sprintf("%d ops failed (see the ledger)", o.Failed))
	}
	o.Health = h
	return o
}

// pickMetric finds the series for want: the name itself, else the shortest name that ends in
// it ("train/loss", "loss_total" for loss), for a stable choice.
func pickMetric(last map[string]float64, want string) (string, bool) {
	if _, ok := last[want]; ok {
		return want, true
	}
	var names []string
	for n := range last {
		if strings.HasSuffix(n, "/"+want) || strings.HasSuffix(n, "."+want) || strings.HasPrefix(n, want+"_") || strings.HasSuffix(n, "_"+want) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "", false
	}
	sort.Slice(names, func(i, j int) bool {
		if len(names[i]) != len(names[j]) {
			return len(names[i]) < len(names[j])
		}
		return names[i] < names[j]
	})
	return names[0], true
}

// optimizerLR is the lr of the first group of the optimizer "main" in the kernel's status extra.
func optimizerLR(extra map[string]any) (float64, bool) {
	opts, _ := extra["optimizers"].(map[string]any)
	groups, _ := opts["main"].([]any)
	if len(groups) == 0 {
		return 0, false
	}
	g, _ := groups[0].(map[string]any)
	lr, ok := g["lr"].(float64)
	return lr, ok
}

// totalSteps is the run's planned number of steps, when the status or the metrics say it
// (total_steps or max_steps).
func totalSteps(extra map[string]any, m MetricsSource) (int64, bool) {
	for _, k := range []string{"total_steps", "max_steps"} {
		if v, ok := extra[k].(float64); ok && v > 0 {
			return int64(v), true
		}
	}
	if sf, ok := m.(*seriesFile); ok {
		rec := sf.lastRecord()
		for _, k := range []string{"total_steps", "max_steps"} {
			if v, ok := number(rec[k]); ok && v > 0 && !math.IsInf(v, 0) {
				return int64(v), true
			}
		}
	}
	return 0, false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
