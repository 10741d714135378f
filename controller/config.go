package controller

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

// CallbackSpec is one entry of the desired-state YAML.
type CallbackSpec struct {
	ID      string
	Enabled bool
	Target  ops.CallbackTarget
	Init    map[string]any
	Params  map[string]any
}

// ParseConfig reads hotcb.yaml (schema version 1): `callbacks: {id: {enabled, target: {kind,
// path, symbol}, init, params}}`, or the same under `cb:` as the kernel's file has it. Callbacks
// keep the file's order. Init and params are normalized (ops.Normalize: YAML's int is an int64).
// Every problem is reported with the callback id and key.
func ParseConfig(data []byte) ([]CallbackSpec, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("invalid YAML: %v", err)
	}
	if len(root.Content) == 0 {
		return nil, nil // empty file: no callbacks
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, errors.New("the top level must be a mapping (version, callbacks)")
	}
	if v := mapValue(doc, "version"); v != nil {
		var version int
		if err := v.Decode(&version); err != nil || version != 1 {
			return nil, fmt.Errorf("line %d: unsupported version %q (this reads version 1)", v.Line, v.Value)
		}
	}
	cbs := mapValue(doc, "callbacks")
	if cb := mapValue(doc, "cb"); cbs == nil && cb != nil {
		cbs = mapValue(cb, "callbacks")
	}
	if cbs == nil || (cbs.Kind == yaml.ScalarNode && cbs.Tag == "!!null") {
		return nil, nil
	}
	if cbs.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: callbacks must be a mapping of id to spec", cbs.Line)
	}
	var specs []CallbackSpec
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
		specs = append(specs, spec)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return specs, nil
}

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

// configSource re-reads the YAML when its content changes.
type configSource struct {
	path    string
	last    []byte // content last applied
	badHash string // content last reported as invalid
}

// poll returns the reconciling ops when the file changed to valid content; invalid content
// keeps the previous state and is reported once.
func (s *configSource) poll() (out []ops.Op, err error, changed bool) {
	data, rerr := readRegular(s.path)
	if rerr != nil {
		if errors.Is(rerr, fs.ErrNotExist) {
			return nil, nil, false
		}
		msg := fmt.Errorf("cannot read %s: %v (keeping the previous configuration)", s.path, rerr)
		if s.badHash == msg.Error() {
			return nil, nil, false
		}
		s.badHash = msg.Error()
		return nil, msg, false
	}
	if s.last != nil && bytes.Equal(data, s.last) {
		return nil, nil, false
	}
	specs, perr := ParseConfig(data)
	if perr != nil {
		key := string(data)
		if s.badHash == key {
			return nil, nil, false
		}
		s.badHash = key
		return nil, fmt.Errorf("%s is invalid, keeping the previous configuration: %v", s.path, perr), false
	}
	s.last, s.badHash = data, ""
	return Ops(specs), nil, true
}

// readRegular reads a control file, refusing anything but a regular file: opening a FIFO put in
// its place would block the training loop until some process wrote to it, and a symbolic link
// would read a file of the link's choosing.
func readRegular(path string) ([]byte, error) {
	b, _, err := rundir.ReadControl(path)
	return b, err
}
