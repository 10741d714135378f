package controller_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
)

// FuzzParseConfig: no YAML may panic the parser, and accepted configs produce valid ops.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"version: 1\ncallbacks:\n  t:\n    enabled: true\n    target: {kind: module, path: a, symbol: B}\n    init: {every: 5}\n    params: {x: [1, 2]}\n",
		"cb:\n  callbacks:\n    t: {target: {kind: go_file, path: x.go, symbol: S}}\n",
		"callbacks: {}", "", "version: 1", "callbacks: [", "&a [*a]", "callbacks:\n  x: !!binary aGVsbG8=\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		specs, err := controller.ParseConfig(b)
		if err != nil {
			return
		}
		for _, op := range controller.Ops(specs) {
			require.NoError(t, op.Validate())
		}
	})
}
