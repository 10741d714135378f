package callback_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

type nop struct{ id string }

func (n nop) ID() string                       { return n.id }
func (nop) Handle(string, *torchenv.Env) error { return nil }
func (nop) SetParams(map[string]any) error     { return nil }

func TestRegistry(t *testing.T) {
	r := callback.NewRegistry()
	_, err := r.Lookup("a/b", "C")
	require.ErrorContains(t, err, "the registry is empty")
	r.Register("a/b", "C", func(id string, init map[string]any) (callback.HotCallback, error) {
		if init["fail"] != nil {
			return nil, errors.New("no")
		}
		return nop{id}, nil
	})
	r.Register("a/b", "D", func(id string, _ map[string]any) (callback.HotCallback, error) { return nil, nil })
	require.Panics(t, func() { r.Register("a/b", "C", nil) })
	require.Panics(t, func() {
		r.Register("a/b", "C", func(string, map[string]any) (callback.HotCallback, error) { return nil, nil })
	})
	_, err = r.Lookup("a/b", "X")
	require.ErrorContains(t, err, `no symbol "X" registered under "a/b" (it has: C, D)`)
	_, err = r.Lookup("z", "X")
	require.ErrorContains(t, err, "registered: a/b#C, a/b#D")
	require.Equal(t, []string{"a/b#C", "a/b#D"}, r.Names())

	l := callback.ModuleLoader(r)
	cb, err := l.Load(ops.CallbackTarget{Kind: "module", Path: "a/b", Symbol: "C"}, "x", nil)
	require.NoError(t, err)
	require.Equal(t, "x", cb.ID())
	_, err = l.Load(ops.CallbackTarget{Kind: "module", Path: "a/b", Symbol: "C"}, "x", map[string]any{"fail": 1})
	require.ErrorContains(t, err, "a/b#C: no")
	_, err = l.Load(ops.CallbackTarget{Kind: "module", Path: "a/b", Symbol: "D"}, "x", nil)
	require.ErrorContains(t, err, "factory returned no callback")
}
