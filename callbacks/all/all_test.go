package all

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

// TestDescriptionsMatchCallbacks: each description in spec.All is true of the callback its
// package registers — every name loads it, the Go path and name are its type's, and a new one has
// the described defaults — and nothing else is registered under the built-ins' prefixes.
func TestDescriptionsMatchCallbacks(t *testing.T) {
	described := map[string]bool{}
	for _, b := range spec.All {
		for _, tg := range b.Targets() {
			described[tg.String()] = true
			f, err := callback.Default.Lookup(tg.Path, tg.Symbol)
			require.NoError(t, err, b.Name)
			cb, err := f("x", nil)
			require.NoError(t, err, tg)
			require.Equal(t, "x", cb.ID())

			typ := reflect.TypeOf(cb)
			require.Equal(t, reflect.Pointer, typ.Kind(), tg)
			require.Equal(t, b.GoPath(), typ.Elem().PkgPath(), "%s: the Go path is the package of the type it loads", tg)
			require.Equal(t, b.Name, typ.Elem().Name(), "%s: the Go symbol is the name of the type it loads", tg)

			got := reflect.ValueOf(cb).MethodByName("Params").Call(nil)[0].Interface()
			var want map[string]any
			for _, p := range b.Params() {
				if want == nil {
					want = map[string]any{}
				}
				want[p.Key] = p.Default
			}
			enc := params.Encode(got)
			for k, v := range enc {
				if v == nil {
					enc[k] = []any{} // as Params shows a nil list
				}
			}
			require.Equal(t, want, enc, "%s: a new one has the described defaults", tg)
			if c, ok := cb.(callback.Closer); ok {
				require.NoError(t, c.Close())
			}
		}
	}
	for _, n := range callback.Default.Names() {
		if strings.HasPrefix(n, spec.PythonPackage) || strings.HasPrefix(n, spec.GoPackage+"/") {
			require.True(t, described[n], "%s is registered but not in spec.All", n)
		}
	}
}

// TestEventParams: the event names that the descriptions spell out (package spec cannot import
// torchenv, which links libtorch) are torchenv's.
func TestEventParams(t *testing.T) {
	n := 0
	for _, b := range spec.All {
		for _, p := range b.Params() {
			if p.Key != "event" && p.Key != "events" {
				continue
			}
			n++
			oneof, ok := strings.CutPrefix(p.Rules, "oneof=")
			require.True(t, ok, "%s.%s: %s", b.Name, p.Key, p.Rules)
			for _, e := range strings.Split(oneof, "|") {
				require.Contains(t, torchenv.Events, e, "%s.%s", b.Name, p.Key)
			}
			defaults, _ := p.Default.([]any)
			if s, ok := p.Default.(string); ok {
				defaults = []any{s}
			}
			require.NotEmpty(t, defaults, "%s.%s", b.Name, p.Key)
			for _, e := range defaults {
				require.True(t, slices.Contains(strings.Split(oneof, "|"), e.(string)), "%s.%s default %v", b.Name, p.Key, e)
			}
		}
	}
	require.Equal(t, 6, n)
}
