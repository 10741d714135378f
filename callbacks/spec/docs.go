package spec

import (
	_ "embed"
	"go/ast"
	"go/parser"
	"go/token"
	"strings"
	"sync"
)

// paramsSource is params.go, whose field comments are the parameters' doc: read from the
// source that declares the fields, they cannot differ from it.
//
//go:embed params.go
var paramsSource string

var fieldDocs = sync.OnceValue(func() map[string]string {
	docs := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "params.go", paramsSource, parser.ParseComments)
	if err != nil { // it compiled: it parses
		panic("spec: params.go: " + err.Error())
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fd := range st.Fields.List {
			for _, name := range fd.Names {
				docs[ts.Name.Name+"."+name.Name] = strings.Join(strings.Fields(fd.Doc.Text()), " ")
			}
		}
		return false
	})
	return docs
})

// fieldDoc is the doc comment of field of type typ in params.go, on one line ("" for none).
func fieldDoc(typ, field string) string { return fieldDocs()[typ+"."+field] }
