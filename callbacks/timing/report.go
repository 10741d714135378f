package timing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/torchenv"
)

// Record is one line of the JSONL output. Times are milliseconds over the last Window values.
type Record struct {
	Time   string `json:"time"`
	ID     string `json:"id"`
	Step   int64  `json:"step"`  // env.Step at the last closed step
	Steps  int64  `json:"steps"` // steps timed since the callback started
	Window int    `json:"window"`
	Device string `json:"device"`
	// DeviceTiming is true when device (CUDA event) times are reported next to host times;
	// Note says why not otherwise ("host only: device timing unavailable on cpu").
	DeviceTiming bool   `json:"device_timing"`
	Note         string `json:"note,omitempty"`
	Sync         bool   `json:"sync"`

	StepMs       Stats    `json:"step_ms"`
	DeviceStepMs *Stats   `json:"device_step_ms,omitempty"`
	StepsPerS    float64  `json:"steps_per_s"`
	SamplesPerS  *float64 `json:"samples_per_s,omitempty"`
	BatchSize    int64    `json:"batch_size,omitempty"` // of the last step

	// Intervals are keyed by phase — "data/other", "forward", "backward", "optimizer" — and
	// "from->to" between other events ("optimizer_step_end->train_step_end").
	Intervals map[string]IntervalStats `json:"intervals"`
	// Order lists the interval keys in the order they occur in a step.
	Order []string `json:"order"`

	DevicePending int   `json:"device_pending,omitempty"` // marks the device has not reached yet
	DeviceDropped int64 `json:"device_dropped,omitempty"` // marks skipped because too many were pending

	// DataParallel is set in a data-parallel run (env.Ranks): this rank's all-reduce wait per
	// step and the slowest rank, over the steps since the previous record. Snapshot leaves the
	// comparison across ranks out; a record written at a report has it.
	DataParallel *DataParallel `json:"data_parallel,omitempty"`
}

// IntervalStats are the host and device times of one interval.
type IntervalStats struct {
	HostMs   Stats  `json:"host_ms"`
	DeviceMs *Stats `json:"device_ms,omitempty"`
}

func (t *Timing) stats(r *ring) Stats {
	t.scratch = r.values(t.scratch[:0])
	return summarize(t.scratch)
}

// Snapshot computes the current record without writing it.
func (t *Timing) Snapshot() Record {
	rec := Record{
		Time:         time.Now().UTC().Format(time.RFC3339Nano),
		ID:           t.ID(),
		Step:         t.lastStep,
		Steps:        t.steps,
		Window:       t.p.Window,
		Device:       t.dev.String(),
		DeviceTiming: t.devTimes != nil,
		Note:         t.note,
		Sync:         t.p.Sync,
		StepMs:       t.stats(t.step),
		Intervals:    map[string]IntervalStats{},
	}
	var stepNs, samples int64
	t.scratch = t.step.values(t.scratch[:0])
	for _, v := range t.scratch {
		stepNs += v
	}
	t.scratch = t.batch.values(t.scratch[:0])
	for _, v := range t.scratch {
		samples += v
	}
	if n := len(t.scratch); n > 0 {
		rec.BatchSize = t.scratch[n-1]
	}
	if stepNs > 0 {
		rec.StepsPerS = round3(float64(t.step.n) / (float64(stepNs) / 1e9))
		if samples > 0 {
			s := round3(float64(samples) / (float64(stepNs) / 1e9))
			rec.SamplesPerS = &s
		}
	}
	d := t.devTimes
	if d != nil {
		s := t.stats(d.step)
		rec.DeviceStepMs = &s
		rec.DevicePending, rec.DeviceDropped = d.n, d.dropped
	}
	for _, iv := range t.order {
		is := IntervalStats{HostMs: t.stats(iv.host)}
		if d != nil || iv.dev.n > 0 {
			s := t.stats(iv.dev)
			is.DeviceMs = &s
		}
		rec.Intervals[iv.name] = is
		rec.Order = append(rec.Order, iv.name)
	}
	rec.DataParallel = t.dataParallel()
	return rec
}

func round3(v float64) float64 { return float64(int64(v*1e3+0.5)) / 1e3 }

// report writes a record to the JSONL file and a summary line to the log.
func (t *Timing) report(env *torchenv.Env) error {
	rec := t.Snapshot()
	t.written = t.steps
	if dp := rec.DataParallel; dp != nil {
		if env != nil { // Close without fit_end: the other ranks may be gone
			t.compare(dp, shareTimeout(rec.StepMs.Max))
		} else {
			dp.Note = "ranks not compared (closed without fit_end)"
		}
		t.rt.reset()
	}
	t.logf(env, t.summary(rec))
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "optimizer_step_end->train_step_end" readable
	if err := enc.Encode(rec); err != nil {
		return err
	}
	if t.file == nil {
		p, err := callbacks.OutPath(&torchenv.Env{RunDir: t.runDir}, t.p.Out, false)
		if err != nil {
			return fmt.Errorf("timing: out: %w", err)
		}
		if t.file, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			return fmt.Errorf("timing: %w", err)
		}
		t.filePath = p
	}
	if _, err := t.file.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("timing: %w", err)
	}
	return nil
}

// summary is the one-line form of a record:
//
//	[timing] step=99 12.1 steps/s 774 samples/s | step p50 82.3ms p95 90.1 max 95.0 | data/other 10.2 forward 20.3 backward 40.1 ... (p50 ms) | host only: device timing unavailable on cpu
func (t *Timing) summary(r Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] step=%d %.1f steps/s", r.ID, r.Step, r.StepsPerS)
	if r.SamplesPerS != nil {
		fmt.Fprintf(&b, " %.0f samples/s", *r.SamplesPerS)
	}
	fmt.Fprintf(&b, " | step p50 %.2fms p95 %.2f max %.2f", r.StepMs.P50, r.StepMs.P95, r.StepMs.Max)
	if r.DeviceStepMs != nil {
		fmt.Fprintf(&b, " (device p50 %.2fms p95 %.2f max %.2f)", r.DeviceStepMs.P50, r.DeviceStepMs.P95, r.DeviceStepMs.Max)
	}
	if len(r.Order) > 0 {
		b.WriteString(" |")
		for _, name := range r.Order {
			is := r.Intervals[name]
			fmt.Fprintf(&b, " %s %.2f", name, is.HostMs.P50)
			if is.DeviceMs != nil && is.DeviceMs.N > 0 {
				fmt.Fprintf(&b, "/%.2f", is.DeviceMs.P50)
			}
		}
		if r.DeviceTiming {
			b.WriteString(" (p50 ms host/device)")
		} else {
			b.WriteString(" (p50 ms)")
		}
	}
	if r.DataParallel != nil {
		summaryRanks(&b, r.DataParallel)
	}
	if r.Note != "" {
		b.WriteString(" | " + r.Note)
	}
	if r.Sync {
		b.WriteString(" | sync")
	}
	return b.String()
}
