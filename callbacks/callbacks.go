// Package callbacks holds what hotcb's built-in callbacks share: Provide, which registers one
// under both its Go name and hotcb's Python names (so that hotcb's own commands, such as
// `--path hotcb.modules.cb.callbacks.timing --symbol TimingCallback`, load it verbatim), Base,
// the id, parameters and SetParams each embeds, and output locations confined to the run
// directory. Each built-in is described once in package spec; the callbacks themselves live in
// the sub-packages (timing, featviz, stats, ...); package callbacks/all imports every one.
package callbacks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// PythonPackage is the Python hotcb package that exports every built-in callback.
const PythonPackage = spec.PythonPackage

// Provide registers the built-in s in the default registry (callback.Register) under each of its
// names (s.Targets): a load of any of them builds the callback with newCB. The constructor's
// callback must have s's parameters.
func Provide[P any, C interface {
	callback.HotCallback
	Params() P
}](s *spec.Spec[P], newCB func(id string, init map[string]any) (C, error)) {
	f := func(id string, init map[string]any) (callback.HotCallback, error) {
		c, err := newCB(id, init)
		if err != nil { // not a typed nil pointer in a non-nil interface
			return nil, err
		}
		return c, nil
	}
	for _, t := range s.Targets() {
		callback.Register(t.Path, t.Symbol, f)
	}
}

// Base is what each built-in embeds: its id (ID), its parameters — of type P, the params struct
// that package spec describes, held in the callback's own field so that its hot paths read them
// directly — and SetParams, which decodes over them all or nothing. Close does nothing; a
// callback with something to release defines its own. Init readies it.
type Base[P any] struct {
	id    string
	p     *P
	opts  []params.Option
	apply func(old P, m map[string]any) error
}

// Init readies b: the callback's id, and its parameters at p (the embedding callback's field)
// set to s's defaults, then init applied as SetParams applies values.
//
// apply, when not nil, runs at every successful decode, the new values already at p; old are
// the values before. It checks what the decoding cannot (a value against another, a path against
// the run directory) and puts the new values to use (reopens a file, moves hooks). An error
// refuses them: p gets the old values back, so apply must change nothing else before it returns
// one. m is the map being applied, for the values an error shows.
func (b *Base[P]) Init(id string, p *P, s *spec.Spec[P], init map[string]any, apply func(old P, m map[string]any) error) error {
	b.id, b.p, b.opts, b.apply = id, p, s.Options, apply
	*p = s.Defaults()
	return b.SetParams(init)
}

// ID returns the callback's id.
func (b *Base[P]) ID() string { return b.id }

// Params returns a copy of the current parameters (their lists are copies too).
func (b *Base[P]) Params() P { return cloneLists(*b.p) }

// SetParams decodes m over the current parameters (params.Decode, with s's Options), all or
// nothing: on any error, the decoding's or apply's, the callback keeps its values. Only the keys
// in m change.
func (b *Base[P]) SetParams(m map[string]any) error {
	old := *b.p
	next := old // Decode replaces lists and maps, never writes into them: old keeps its own
	if err := params.Decode(m, &next, b.opts...); err != nil {
		return err
	}
	*b.p = next
	if b.apply != nil {
		if err := b.apply(old, m); err != nil {
			*b.p = old
			return err
		}
	}
	return nil
}

// Close does nothing.
func (b *Base[P]) Close() error { return nil }

// cloneLists returns p with its slice fields copied.
func cloneLists[P any](p P) P {
	v := reflect.ValueOf(&p).Elem()
	if v.Kind() != reflect.Struct {
		return p
	}
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Slice && !f.IsNil() && f.CanSet() {
			c := reflect.MakeSlice(f.Type(), f.Len(), f.Len())
			reflect.Copy(c, f)
			f.Set(c)
		}
	}
	return p
}

// ErrOutsideRunDir is returned for output paths that leave the run directory.
var ErrOutsideRunDir = errors.New("output path is outside the run directory")

// OutPath resolves an output path given in params: relative paths are joined to the env's run
// directory (the current directory when the env has none); absolute paths and paths with ".."
// must stay inside it unless allowOutside is set. The parent directory is created (0700).
func OutPath(env *torchenv.Env, p string, allowOutside bool) (string, error) {
	root := "."
	if env != nil && env.RunDir != "" {
		root = env.RunDir
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	full := p
	if !filepath.IsAbs(p) {
		full = filepath.Join(rootAbs, p)
	}
	full = filepath.Clean(full)
	if !allowOutside {
		rel, err := filepath.Rel(rootAbs, full)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("%w: %s (run dir %s)", ErrOutsideRunDir, p, rootAbs)
		}
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		return "", err
	}
	return full, nil
}
