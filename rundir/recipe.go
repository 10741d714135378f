package rundir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
)

// Payload is what the ledger stores for an op: its arguments (params, target, init, enabled,
// mode, source_capture), so that a recipe can be rebuilt from the ledger alone. Params and init
// are ready for JSON (params.ForJSON: 2.0 is written 2.0, and reads back as a float).
func Payload(op ops.Op) map[string]any {
	p := map[string]any{}
	if op.Params != nil {
		p["params"] = params.ForJSONMap(op.Params)
	}
	if op.Target != nil {
		p["target"] = op.Target
	}
	if op.Init != nil {
		p["init"] = params.ForJSONMap(op.Init)
	}
	if op.Enabled != nil {
		p["enabled"] = *op.Enabled
	}
	if op.Mode != "" {
		p["mode"] = op.Mode
	}
	if op.SourceCapture != nil {
		p["source_capture"] = op.SourceCapture
	}
	return p
}

// recordedModules are the modules whose applied ops a recipe replays.
var recordedModules = map[string]bool{"cb": true, "opt": true, "loss": true}

// ExportRecipe turns applied ledger entries of the cb, opt and loss modules into recipe entries,
// in seq order. Restores after a restart are left out: they re-establish state that the
// entries before them built, and replaying those builds it again.
func ExportRecipe(entries []LedgerEntry) ([]RecipeEntry, error) {
	sorted := append([]LedgerEntry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	var out []RecipeEntry
	for _, e := range sorted {
		if e.Decision != DecisionApplied || !recordedModules[e.Module] || e.Op == "reload" || IsRestore(e) ||
			e.Source == SourceWatchdog || e.Source == SourceAutoDisable {
			continue
		}
		r := RecipeEntry{At: At{Step: e.Step, Event: e.Event}, Module: e.Module, Op: e.Op}
		if e.ID != nil {
			r.ID = *e.ID
		}
		p, err := DecodePayload(e)
		if err != nil {
			return nil, err
		}
		r.Params, r.Target, r.Init, r.Enabled, r.Mode, r.SourceCapture = p.Params, p.Target, p.Init, p.Enabled, p.Mode, p.SourceCapture
		out = append(out, r)
	}
	return out, nil
}

// DecodePayload gives back the op a ledger entry records: its payload's fields typed, with
// params and init normalized (ops.Normalize) as they were when the op was applied — 50 an int64,
// 2.0 a float64. Module, op and id are the entry's.
func DecodePayload(e LedgerEntry) (ops.Op, error) {
	op := ops.Op{Module: e.Module, Op: e.Op}
	if e.ID != nil {
		op.ID = *e.ID
	}
	// Round-trip the payload through JSON to get typed fields back; numbers keep their kind.
	b, err := json.Marshal(params.ForJSON(e.Payload))
	if err == nil {
		var p struct {
			Params        map[string]any      `json:"params"`
			Target        *ops.CallbackTarget `json:"target"`
			Init          map[string]any      `json:"init"`
			Enabled       *bool               `json:"enabled"`
			Mode          string              `json:"mode"`
			SourceCapture *ops.SourceCapture  `json:"source_capture"`
		}
		if err = unmarshalExact(b, &p); err == nil {
			op.Params, op.Target, op.Init, op.Enabled, op.Mode, op.SourceCapture = p.Params, p.Target, p.Init, p.Enabled, p.Mode, p.SourceCapture
			op, err = ops.Normalize(op)
		}
	}
	if err != nil {
		return ops.Op{}, fmt.Errorf("ledger seq %d: payload: %v", e.Seq, err)
	}
	return op, nil
}

// IsRestore says whether a ledger entry is a restart's restore: source "restore", or, in
// ledgers of hotcb-go before 0.2, a "replay" noted "restart" (those re-applied the whole
// history at every restart).
func IsRestore(e LedgerEntry) bool {
	return e.Source == SourceRestore ||
		(e.Source == SourceReplay && e.Notes != nil && strings.HasPrefix(*e.Notes, "restart"))
}

// ReadRecipe reads a recipe file; any bad line is an error naming it (a recipe is an input the
// user wants replayed exactly). It is read as ReadInput reads, at a safe point: a FIFO in its
// place is refused, not waited on. Params and init come out normalized
// (RecipeEntry.UnmarshalJSON).
func ReadRecipe(path string) ([]RecipeEntry, error) {
	b, err := ReadInput(path)
	if err != nil {
		return nil, err
	}
	items, bad := scanJSONL[RecipeEntry](bytes.NewReader(b), path)
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	for i, r := range items {
		if err := r.ToOp().Validate(); err != nil {
			return nil, fmt.Errorf("%s entry %d (%s %s): %v", path, i+1, r.Module, r.Op, err)
		}
		if r.Op == "" || r.Module == "" {
			return nil, fmt.Errorf("%s entry %d: module and op are required", path, i+1)
		}
	}
	return items, nil
}

// normalized is r with its params and init normalized (ops.Normalize).
func (r RecipeEntry) normalized() (RecipeEntry, error) {
	op, err := ops.Normalize(ops.Op{Params: r.Params, Init: r.Init})
	if err != nil {
		return r, err
	}
	r.Params, r.Init = op.Params, op.Init
	return r, nil
}

// MarshalJSON writes the entry with floats that have no fraction as 2.0 rather than 2
// (params.ForJSON), so that a replay gives callbacks a float64 where the run gave one.
func (r RecipeEntry) MarshalJSON() ([]byte, error) {
	type plain RecipeEntry // without the method
	p := plain(r)
	p.Params, p.Init = params.ForJSONMap(r.Params), params.ForJSONMap(r.Init)
	return json.Marshal(p)
}

// WriteRecipe writes entries as JSONL (atomically).
func WriteRecipe(path string, entries []RecipeEntry) error {
	b, err := EncodeRecipe(entries)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, b)
}

// EncodeRecipe is the text of a recipe file: one JSON object a line.
func EncodeRecipe(entries []RecipeEntry) ([]byte, error) {
	var sb strings.Builder
	for _, e := range entries {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		sb.Write(b)
		sb.WriteByte('\n')
	}
	return []byte(sb.String()), nil
}

// Match selects recipe entries; empty fields match anything.
type Match struct {
	Module  string `yaml:"module,omitempty" json:"module,omitempty"`
	Op      string `yaml:"op,omitempty" json:"op,omitempty"`
	ID      string `yaml:"id,omitempty" json:"id,omitempty"`
	AtStep  *int64 `yaml:"at_step,omitempty" json:"at_step,omitempty"`
	AtEvent string `yaml:"at_event,omitempty" json:"at_event,omitempty"`
}

func (m Match) matches(r RecipeEntry) bool {
	return (m.Module == "" || m.Module == r.Module) && (m.Op == "" || m.Op == r.Op) &&
		(m.ID == "" || m.ID == r.ID) && (m.AtStep == nil || *m.AtStep == r.At.Step) &&
		(m.AtEvent == "" || m.AtEvent == r.At.Event)
}

// Transform scales and/or adds to numeric params.
type Transform struct {
	Scale map[string]float64 `yaml:"scale,omitempty" json:"scale,omitempty"`
	Add   map[string]float64 `yaml:"add,omitempty" json:"add,omitempty"`
}

// Patch is one rule of hotcb.adjust.yaml: a match with actions, or an insert.
type Patch struct {
	Match           *Match         `yaml:"match,omitempty" json:"match,omitempty"`
	ReplaceParams   map[string]any `yaml:"replace_params,omitempty" json:"replace_params,omitempty"`
	ShiftStep       *int64         `yaml:"shift_step,omitempty" json:"shift_step,omitempty"`
	Drop            bool           `yaml:"drop,omitempty" json:"drop,omitempty"`
	TransformParams *Transform     `yaml:"transform_params,omitempty" json:"transform_params,omitempty"`
	Insert          *RecipeEntry   `yaml:"insert,omitempty" json:"insert,omitempty"`
}

// AdjustFile is hotcb.adjust.yaml (YAML or JSON).
type AdjustFile struct {
	Version int     `yaml:"version" json:"version"`
	Patches []Patch `yaml:"patches" json:"patches"`
}

// ParseAdjust parses and validates an adjust file.
func ParseAdjust(data []byte) (AdjustFile, error) {
	var a AdjustFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&a); err != nil && err.Error() != "EOF" {
		return AdjustFile{}, fmt.Errorf("invalid adjust file: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if a.Version != 0 && a.Version != 1 {
		return AdjustFile{}, fmt.Errorf("unsupported adjust version %d (this reads version 1)", a.Version)
	}
	for i, p := range a.Patches {
		n := 0
		if p.ReplaceParams != nil {
			n++
		}
		if p.ShiftStep != nil {
			n++
		}
		if p.Drop {
			n++
		}
		if p.TransformParams != nil {
			n++
		}
		switch {
		case p.Insert != nil && (p.Match != nil || n > 0):
			return AdjustFile{}, fmt.Errorf("patch %d: insert stands alone (no match or other actions)", i+1)
		case p.Insert != nil:
			if err := p.Insert.ToOp().Validate(); err != nil || p.Insert.Module == "" {
				if err == nil {
					err = errors.New("module is required")
				}
				return AdjustFile{}, fmt.Errorf("patch %d: insert: %v", i+1, err)
			}
		case p.Match == nil:
			return AdjustFile{}, fmt.Errorf("patch %d: needs a match (or an insert)", i+1)
		case n == 0:
			return AdjustFile{}, fmt.Errorf("patch %d: no action (want replace_params, shift_step, drop or transform_params)", i+1)
		}
	}
	return a, nil
}

// ReadAdjust reads and parses an adjust file.
func ReadAdjust(path string) (AdjustFile, error) {
	b, err := ReadInput(path)
	if err != nil {
		return AdjustFile{}, err
	}
	a, err := ParseAdjust(b)
	if err != nil {
		return AdjustFile{}, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ApplyAdjust applies the patches to a recipe, in order, and returns the adjusted recipe sorted
// by step (stable), params and init normalized (ops.Normalize). A transform of a param that is
// not a number (nor the text of one: "1e-3" is a number) is an error naming it; the transformed
// value is a float64.
func ApplyAdjust(recipe []RecipeEntry, a AdjustFile) ([]RecipeEntry, error) {
	out := make([]RecipeEntry, 0, len(recipe))
	for _, r := range recipe {
		r.Params = copyMap(r.Params)
		out = append(out, r)
	}
	for i, p := range a.Patches {
		if p.Insert != nil {
			out = append(out, *p.Insert)
			continue
		}
		kept := out[:0]
		for _, r := range out {
			if !p.Match.matches(r) {
				kept = append(kept, r)
				continue
			}
			if p.Drop {
				continue
			}
			if p.ReplaceParams != nil {
				r.Params = copyMap(p.ReplaceParams)
			}
			if p.ShiftStep != nil {
				r.At.Step += *p.ShiftStep
			}
			if t := p.TransformParams; t != nil {
				for k, f := range t.Scale {
					v, err := params.Float(r.Params[k])
					if err != nil {
						return nil, fmt.Errorf("patch %d: transform_params scale %q: the param is not a number (%v)", i+1, k, r.Params[k])
					}
					r.Params[k] = v * f
				}
				for k, f := range t.Add {
					v, err := params.Float(r.Params[k])
					if err != nil {
						return nil, fmt.Errorf("patch %d: transform_params add %q: the param is not a number (%v)", i+1, k, r.Params[k])
					}
					r.Params[k] = v + f
				}
			}
			kept = append(kept, r)
		}
		out = kept
	}
	for i, r := range out { // YAML's replace_params and inserts, and what the transforms made
		var err error
		if out[i], err = r.normalized(); err != nil {
			return nil, fmt.Errorf("adjusted entry at step %d (%s %s): %v", r.At.Step, r.Module, r.Op, err)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Step < out[j].At.Step })
	return out, nil
}

func copyMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// PatchTemplate is a commented example adjust file (for `hotcb recipe patch-template`).
const PatchTemplate = `# hotcb.adjust.yaml — patches applied to a recipe in replay_adjusted mode, in order.
version: 1
patches:
  # change the params of matching entries
  - match: {module: opt, op: set_params, at_step: 1200}
    replace_params: {lr: 2.0e-5}
  # move matching entries later (or earlier with a negative number)
  - match: {module: cb, id: feat_viz}
    shift_step: 100
  # scale or add to numeric params
  - match: {module: loss, id: main}
    transform_params: {scale: {distill_w: 1.1}, add: {depth_w: 0.5}}
  # drop matching entries
  - match: {module: cb, id: heartbeat}
    drop: true
  # add a new entry
  - insert:
      at: {step: 1000, event: train_step_end}
      module: cb
      op: enable
      id: sys
`
