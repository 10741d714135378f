package controller

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hotcb/hotcb/ops"
)

// CallbackSpec is one entry of the desired-state YAML.
type CallbackSpec struct {
	ID      string
	Enabled bool
	Target  ops.CallbackTarget
	Init    map[string]any
	Params  map[string]any
}

// ParseConfig reads hotcb.yaml (schema version 1) and returns its callbacks (see ReadConfig).
func ParseConfig(data []byte) ([]CallbackSpec, error) {
	cfg, err := ReadConfig(data)
	return cfg.Callbacks, err
}

// Config is hotcb.yaml as the controller reads it.
type Config struct {
	// Callbacks are the callbacks the file lists, in its order.
	Callbacks []CallbackSpec
	// NotApplied says, for each section of hotcb's schema that the file has and this program
	// does not apply (core, opt, loss, tune), that it is left alone.
	NotApplied []string
}

// topLevel are the top-level keys of hotcb's hotcb.yaml: version and the callbacks (at the top,
// or under cb as the kernel's file has them) are read; hotcb's other sections are known, and
// left alone with a note.
var topLevel = []string{"version", "callbacks", "cb", "core", "opt", "loss", "tune"}

var notApplied = map[string]string{
	"core": "set the freeze mode with `hotcb freeze` (hotcb.freeze.json)",
	"opt":  "change the optimizer with `hotcb opt set_params`",
	"loss": "change the loss with `hotcb loss set_params`",
	"tune": "hotcb-go has no autotuner",
}

// ReadConfig reads hotcb.yaml (schema version 1): `callbacks: {id: {enabled, target: {kind,
// path, symbol}, init, params}}`, or the same under `cb:` as the kernel's file has it. Callbacks
// keep the file's order, their init and params normalized (ops.Normalize: YAML's int is an
// int64). Every problem is reported with its line, the callback id and key; a top-level key
// hotcb does not know (a misspelt `callbaks:`) is an error, not an empty file.
func ReadConfig(data []byte) (Config, error) {
	var cfg Config
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, fmt.Errorf("invalid YAML: %v", err)
	}
	if len(root.Content) == 0 {
		return cfg, nil // empty file: no callbacks
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return cfg, errors.New("the top level must be a mapping (version, callbacks)")
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k := doc.Content[i]
		if !slices.Contains(topLevel, k.Value) {
			return cfg, fmt.Errorf("line %d: unknown top-level key %q (valid: %s)", k.Line, k.Value, strings.Join(topLevel, ", "))
		}
		if why, ok := notApplied[k.Value]; ok {
			cfg.NotApplied = append(cfg.NotApplied, fmt.Sprintf("section %s (line %d) is not applied: %s", k.Value, k.Line, why))
		}
	}
	if v := mapValue(doc, "version"); v != nil {
		var version int
		if err := v.Decode(&version); err != nil || version != 1 {
			return cfg, fmt.Errorf("line %d: unsupported version %q (this reads version 1)", v.Line, v.Value)
		}
	}
	cbs := mapValue(doc, "callbacks")
	if cb := mapValue(doc, "cb"); cb != nil && !isNull(cb) {
		if cb.Kind != yaml.MappingNode {
			return cfg, fmt.Errorf("line %d: cb must be a mapping (callbacks)", cb.Line)
		}
		for i := 0; i+1 < len(cb.Content); i += 2 {
			if k := cb.Content[i]; k.Value != "callbacks" {
				return cfg, fmt.Errorf("line %d: unknown key %q under cb (valid: callbacks)", k.Line, k.Value)
			}
		}
		if cbs == nil {
			cbs = mapValue(cb, "callbacks")
		}
	}
	if cbs == nil || isNull(cbs) {
		return cfg, nil
	}
	if cbs.Kind != yaml.MappingNode {
		return cfg, fmt.Errorf("line %d: callbacks must be a mapping of id to spec", cbs.Line)
	}
	var errs []error
	seen := map[string]int{} // id -> line
	for i := 0; i+1 < len(cbs.Content); i += 2 {
		id, node := cbs.Content[i].Value, cbs.Content[i+1]
		if line, dup := seen[id]; dup {
			errs = append(errs, fmt.Errorf("callback %s is defined twice (lines %d and %d); keep one", id, line, cbs.Content[i].Line))
			continue
		}
		seen[id] = cbs.Content[i].Line
		spec, err := parseSpec(id, node)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cfg.Callbacks = append(cfg.Callbacks, spec)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

func mapValue(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func parseSpec(id string, node *yaml.Node) (CallbackSpec, error) {
	spec := CallbackSpec{ID: id, Enabled: true}
	if id == "" {
		return spec, fmt.Errorf("line %d: a callback needs a non-empty id", node.Line)
	}
	if node.Kind != yaml.MappingNode {
		return spec, fmt.Errorf("callback %s (line %d): the spec must be a mapping", id, node.Line)
	}
	var raw struct {
		Enabled *bool               `yaml:"enabled"`
		Target  *ops.CallbackTarget `yaml:"target"`
		Init    map[string]any      `yaml:"init"`
		Params  map[string]any      `yaml:"params"`
	}
	var known = map[string]bool{"enabled": true, "target": true, "init": true, "params": true}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if k := node.Content[i].Value; !known[k] {
			return spec, fmt.Errorf("callback %s (line %d): unknown key %q (want enabled, target, init, params)", id, node.Content[i].Line, k)
		}
	}
	if err := node.Decode(&raw); err != nil {
		return spec, fmt.Errorf("callback %s: %v", id, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if raw.Target == nil {
		return spec, fmt.Errorf("callback %s (line %d): missing target {kind, path, symbol}", id, node.Line)
	}
	if raw.Enabled != nil {
		spec.Enabled = *raw.Enabled
	}
	spec.Target, spec.Init, spec.Params = *raw.Target, raw.Init, raw.Params
	load := ops.Op{Op: ops.OpLoad, ID: id, Target: &spec.Target, Init: spec.Init, Params: spec.Params}
	if err := load.Validate(); err != nil {
		return spec, fmt.Errorf("callback %s: %v", id, strings.TrimPrefix(err.Error(), "load "+id+": "))
	}
	load, err := ops.Normalize(load) // YAML's int is an int64, as from every other source
	if err != nil {
		return spec, fmt.Errorf("callback %s (line %d): %v", id, node.Line, err)
	}
	spec.Init, spec.Params = load.Init, load.Params
	return spec, nil
}

// Ops turns specs into the idempotent ops that reconcile the controller with them.
func Ops(specs []CallbackSpec) []ops.Op {
	var out []ops.Op
	for _, s := range specs {
		enabled := s.Enabled
		t := s.Target
		out = append(out, ops.Op{Op: ops.OpLoad, ID: s.ID, Target: &t, Init: s.Init, Enabled: &enabled})
		if len(s.Params) > 0 {
			out = append(out, ops.Op{Op: ops.OpSetParams, ID: s.ID, Params: s.Params})
		}
	}
	return out
}
