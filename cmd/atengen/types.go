package main

import (
	"fmt"
	"regexp"
	"strings"
)

// goArg is how one schema argument (or the dtype/layout/device/pin_memory group) appears in a
// generated Go function: its parameter and the code that encodes it.
type goArg struct {
	name   string // Go parameter name
	typ    string // Go type
	encode string // statement encoding it into `args` (a *bridge.ATenArgs), %s = name
	schema []Arg  // the schema arguments it stands for
}

var listLen = regexp.MustCompile(`\[\d*\]`)

// baseType removes a list length: "int[2]" -> "int[]", "SymInt[]?" -> "int[]?"; SymInt is int.
func baseType(t string) string {
	t = listLen.ReplaceAllString(t, "[]")
	return strings.ReplaceAll(t, "SymInt", "int")
}

// argType maps a schema type to its Go type and encoder call; ok is false for types the bridge
// cannot pass (the op is skipped and the reason reported).
func argType(t string) (goType, enc string, ok bool) {
	switch baseType(t) {
	case "Tensor", "Tensor?":
		return "*bridge.Tensor", "args.Tensor(%s)", true
	case "Tensor[]", "Tensor?[]":
		return "[]*bridge.Tensor", "args.Tensors(%s)", true
	case "int":
		return "int64", "args.Int(%s)", true
	case "int?":
		return "*int64", "args.OptInt(%s)", true
	case "int[]":
		return "[]int64", "args.Ints(%s)", true
	case "int[]?":
		return "[]int64", "args.OptInts(%s)", true
	case "float":
		return "float64", "args.Float(%s)", true
	case "float?":
		return "*float64", "args.OptFloat(%s)", true
	case "float[]":
		return "[]float64", "args.Floats(%s)", true
	case "float[]?":
		return "[]float64", "args.OptFloats(%s)", true
	case "bool":
		return "bool", "args.Bool(%s)", true
	case "bool?":
		return "*bool", "args.OptBool(%s)", true
	case "bool[]":
		if n := listLen.FindString(t); len(n) > 2 { // bool[3]: a Go array, so the length is checked at compile time
			return "[" + n[1:len(n)-1] + "]bool", "args.Bools(%s[:])", true
		}
		return "[]bool", "args.Bools(%s)", true
	case "Scalar":
		return "Scalar", "%s.encode(&args)", true
	case "Scalar?":
		return "*Scalar", "encodeOptScalar(&args, %s)", true
	case "ScalarType":
		return "bridge.DType", "args.DType(%s)", true
	case "ScalarType?":
		return "*bridge.DType", "args.OptDType(%s)", true
	case "Device":
		return "bridge.Device", "args.Device(%s)", true
	case "Device?":
		return "*bridge.Device", "args.OptDevice(%s)", true
	case "Layout":
		return "Layout", "args.Layout(int64(%s))", true
	case "Layout?":
		return "*Layout", "encodeOptLayout(&args, %s)", true
	case "MemoryFormat":
		return "MemoryFormat", "args.MemoryFormat(int64(%s))", true
	case "MemoryFormat?":
		return "*MemoryFormat", "encodeOptMemoryFormat(&args, %s)", true
	case "str":
		return "string", "args.Str(%s)", true
	case "str?":
		return "*string", "args.OptStr(%s)", true
	case "Generator?":
		return "", "", true // never passed: the default generator (bridge.ManualSeed)
	}
	return "", "", false
}

// goArgs maps the arguments of s; the first unsupported one is returned as the reason.
func goArgs(s Schema) ([]goArg, string) {
	var out []goArg
	used := map[string]bool{"args": true, "res": true, "bridge": true}
	for i := 0; i < len(s.Args); i++ {
		a := s.Args[i]
		if isOptionsGroup(s.Args[i:]) {
			enc := "%s.encode(&args)"
			if d, p := s.Args[i].Default, s.Args[i+3].Default; d != "None" || p != "None" {
				enc = fmt.Sprintf("%%s.withDefaults(%s, %s).encode(&args)", defaultPtr("ScalarType?", d), defaultPtr("bool?", p))
			}
			out = append(out, goArg{name: goParam("opts", used), typ: "Options", encode: enc, schema: s.Args[i : i+4]})
			i += 3
			continue
		}
		if a.Type == "Generator?" && a.Default == "" {
			return nil, "a Generator overload (generators are not passed: it would repeat the plain overload)"
		}
		typ, enc, ok := argType(a.Type)
		if !ok {
			if strings.Contains(a.Type, "Dimname") {
				return nil, "named tensors (argument type Dimname)"
			}
			return nil, "argument type " + baseType(a.Type)
		}
		if typ == "" {
			continue
		}
		if strings.HasSuffix(a.Type, "?") && a.Default != "" && a.Default != "None" {
			// nil means the schema's default, not None (randint's dtype=long).
			enc = strings.Replace(enc, "%s", "orDefault(%s, "+defaultValue(a.Type, a.Default)+")", 1)
		}
		out = append(out, goArg{name: goParam(a.Name, used), typ: typ, encode: enc, schema: []Arg{a}})
	}
	return out, ""
}

// defaultValue is the Go value of a schema default for an optional argument's type.
func defaultValue(typ, def string) string {
	switch def {
	case "True":
		return "true"
	case "False":
		return "false"
	case "long":
		return "bridge.Int64"
	case "contiguous_format":
		return "ContiguousFormat"
	}
	if baseType(typ) == "float?" && !strings.ContainsAny(def, ".e") {
		return def + ".0"
	}
	return def
}

// defaultPtr is a pointer to a default (through the helpers D and B), or nil for None.
func defaultPtr(typ, def string) string {
	if def == "None" || def == "" {
		return "nil"
	}
	return map[string]string{"ScalarType?": "D", "bool?": "B"}[typ] + "(" + defaultValue(typ, def) + ")"
}

// isOptionsGroup: dtype, layout, device, pin_memory, the TensorOptions of factory functions.
func isOptionsGroup(a []Arg) bool {
	return len(a) >= 4 && a[0].Type == "ScalarType?" && a[1].Type == "Layout?" && a[2].Type == "Device?" &&
		a[3].Type == "bool?" && a[0].Name == "dtype" && a[3].Name == "pin_memory"
}

var goKeywords = map[string]bool{"break": true, "case": true, "chan": true, "const": true, "continue": true,
	"default": true, "defer": true, "else": true, "fallthrough": true, "for": true, "func": true, "go": true,
	"goto": true, "if": true, "import": true, "interface": true, "map": true, "package": true, "range": true,
	"return": true, "select": true, "struct": true, "switch": true, "type": true, "var": true,
	// predeclared names a parameter should not shadow
	"len": true, "cap": true, "copy": true, "append": true, "min": true, "max": true, "string": true, "bool": true,
	"int64": true, "float64": true, "error": true, "new": true, "make": true, "real": true, "imag": true,
	"complex": true, "nil": true, "true": true, "false": true, "print": true, "panic": true, "close": true}

// goParam makes a schema name a Go parameter name: lowerCamelCase, not a keyword, unique.
func goParam(name string, used map[string]bool) string {
	if strings.ToUpper(name) == name {
		name = strings.ToLower(name) // UPLO, N, A
	}
	name = strings.ToLower(name[:1]) + name[1:] // HxW -> hxW
	parts := strings.Split(strings.Trim(name, "_"), "_")
	var b strings.Builder
	for i, p := range parts {
		if p == "" {
			continue
		}
		if i == 0 {
			b.WriteString(p)
		} else {
			b.WriteString(strings.ToUpper(p[:1]) + p[1:])
		}
	}
	n := b.String()
	if n == "" {
		n = "arg"
	}
	if goKeywords[n] {
		n += "_"
	}
	for used[n] {
		n += "_"
	}
	used[n] = true
	return n
}

// goReturn is how the results come back: from the result slots, from an argument (in-place and
// out= results), a list or a number.
type goReturn struct {
	typ  string // Go type
	expr string // expression reading it
}

// goReturns maps the returns of s given its Go arguments; the reason for an unsupported one.
func goReturns(s Schema, args []goArg) ([]goReturn, int, string) {
	var out []goReturn
	slot := 0
	numbers := 0
	for _, r := range s.Returns {
		t := baseType(r.Type)
		switch {
		case t == "Tensor" && strings.HasSuffix(r.Alias, "!"):
			name := ""
			for _, a := range args {
				if len(a.schema) == 1 && a.schema[0].Alias == r.Alias {
					name = a.name
				}
			}
			if name == "" {
				return nil, 0, "a result aliases no argument (" + r.Alias + ")"
			}
			out = append(out, goReturn{"*bridge.Tensor", name})
		case t == "Tensor":
			out = append(out, goReturn{"*bridge.Tensor", fmt.Sprintf("res.T[%d]", slot)})
			slot++
		case t == "Tensor[]":
			if len(s.Returns) != 1 {
				return nil, 0, "a list among several results"
			}
			out = append(out, goReturn{"[]*bridge.Tensor", "res.List"})
		case t == "bool" || t == "int" || t == "float" || t == "Scalar" || t == "ScalarType":
			numbers++
			if numbers > 1 || len(s.Returns) != 1 {
				return nil, 0, "a number among several results"
			}
			out = append(out, goReturn{map[string]string{"bool": "bool", "int": "int64", "float": "float64",
				"Scalar": "Scalar", "ScalarType": "bridge.DType"}[t], map[string]string{"bool": "res.Bool()",
				"int": "res.I", "float": "res.F", "Scalar": "scalarOf(&res)", "ScalarType": "bridge.DType(res.I)"}[t]})
		default:
			return nil, 0, "result type " + r.Type
		}
	}
	if slot > 8 {
		return nil, 0, "more than 8 tensor results"
	}
	return out, slot, ""
}
