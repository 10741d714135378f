// Package symbols holds the yaegi symbol tables that let interpreted go_file callbacks import
// hotcb-go's public packages. The tables are generated: run `go generate ./gofile/...` after
// changing an exported API of these packages (CI checks that they are up to date).
package symbols

import "reflect"

//go:generate go run github.com/traefik/yaegi/cmd/yaegi@v0.16.1 extract github.com/hotcb/hotcb/torchenv github.com/hotcb/hotcb/callback github.com/hotcb/hotcb/ops github.com/hotcb/hotcb/params github.com/hotcb/hotcb/bridge github.com/hotcb/hotcb/bridge/nn github.com/hotcb/hotcb/bridge/optim github.com/hotcb/hotcb/callbacks

// Symbols is filled by the generated files.
var Symbols = map[string]map[string]reflect.Value{}
