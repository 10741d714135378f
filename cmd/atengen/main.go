// Command atengen generates hotcb-go's ATen op surface from the op schemas of a libtorch: the
// C++ tables that call each op unboxed (cpp/aten_gen_*.cpp), the typed Go functions of package
// aten, the op list the CLI prints (package aten/atentable) and a coverage report
// (aten/COVERAGE.md). It reads RegistrationDeclarations.h of -torch-include.
//
//	go run ./cmd/atengen -torch-include /usr/include   (make generate)
//
// Which ops: every public (no leading underscore) op whose argument and result types the bridge
// can pass, with all its overloads, in-place and out= variants; and the private ops listed in
// private below. Names: see goName.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// private are the underscore ops generated all the same: what users of attention, RNNs,
// embedding bags and softmax reach for.
var private = map[string]bool{
	"_softmax": true, "_log_softmax": true, "_scaled_dot_product_attention": true,
	"_scaled_dot_product_attention_math": true, "_native_multi_head_attention": true,
	"_pack_padded_sequence": true, "_pad_packed_sequence": true, "_embedding_bag": true,
	"_weight_norm": true, "_ctc_loss": true, "_unique": true, "_unique2": true, "_to_copy": true,
	"_masked_softmax": true, "_cdist_forward": true, "_pdist_forward": true, "_fft_r2c": true,
	"_fft_c2r": true, "_fft_c2c": true, "_fused_dropout": true,
}

// Op is one generated op.
type Op struct {
	ID     int
	Schema Schema
	Go     string // Go function name
	Args   []goArg
	Rets   []goReturn
	Slots  int // tensor result slots
}

// skipped is an op left out and why.
type skipped struct {
	schema, reason string
}

func main() {
	inc := flag.String("torch-include", "/usr/include", "libtorch's include directory (holds ATen/RegistrationDeclarations.h)")
	root := flag.String("root", ".", "the repository root to write into")
	parts := flag.Int("parts", 8, "C++ translation units to spread the ops over (built in parallel)")
	flag.Parse()
	if err := run(*inc, *root, *parts); err != nil {
		fmt.Fprintln(os.Stderr, "atengen:", err)
		os.Exit(1)
	}
}

func run(inc, root string, parts int) error {
	decl := filepath.Join(inc, "ATen", "RegistrationDeclarations.h")
	schemas, err := readDeclarations(decl)
	if err != nil {
		return fmt.Errorf("%v (a libtorch's headers name every op there)", err)
	}
	ops, skips := selectOps(schemas)
	nameOps(ops)
	hash := tableHash(ops)
	w := writer{root: root}
	w.cpp(ops, parts, hash)
	w.goFuncs(ops, parts, hash)
	w.table(ops, hash)
	w.coverage(schemas, ops, skips)
	if w.err != nil {
		return w.err
	}
	public := map[string]bool{}
	for _, o := range ops {
		if !strings.HasPrefix(o.Schema.Name, "_") {
			public[o.Schema.Name] = true
		}
	}
	fmt.Printf("atengen: %d schemas read, %d ops generated (%d public names), %d skipped; table %s\n",
		len(schemas), len(ops), len(public), len(skips), hash)
	return nil
}

// selectOps picks the ops to generate, in schema order, and says why the others are left out.
func selectOps(schemas []Schema) ([]*Op, []skipped) {
	var ops []*Op
	var skips []skipped
	for _, s := range schemas {
		if strings.HasPrefix(s.Name, "_") && !private[s.Name] {
			skips = append(skips, skipped{s.Text, "private (leading underscore)"})
			continue
		}
		args, why := goArgs(s)
		if why != "" {
			skips = append(skips, skipped{s.Text, why})
			continue
		}
		rets, slots, why := goReturns(s, args)
		if why != "" {
			skips = append(skips, skipped{s.Text, why})
			continue
		}
		ops = append(ops, &Op{ID: len(ops), Schema: s, Args: args, Rets: rets, Slots: slots})
	}
	return ops, skips
}

// camel turns snake_case into CamelCase: "max_pool2d" -> "MaxPool2d".
func camel(s string) string {
	var b strings.Builder
	for _, p := range strings.Split(s, "_") {
		if p == "" {
			continue
		}
		b.WriteString(strings.ToUpper(p[:1]) + p[1:])
	}
	return b.String()
}

// nameOps gives each op its Go name:
//   - the op name in CamelCase ("max_pool2d" -> MaxPool2d); a private op gets "Internal"
//     before it (_softmax -> InternalSoftmax);
//   - then its overload name in CamelCase (add.Scalar -> AddScalar, add.out -> AddOut), except
//     for the op's primary overload, which gets none: the overload named "", else the only one
//     that is not an out= variant (softmax.int -> Softmax), else the one named "Tensor"
//     (add.Tensor -> Add);
//   - then "_" for an in-place op (add_.Tensor -> Add_, add_.Scalar -> AddScalar_).
//
// A primary overload whose name another op took first keeps its overload name; two ops that
// would still get the same name keep the first in schema order and the later get a number
// (none in libtorch 1.13).
func nameOps(ops []*Op) {
	byName := map[string][]*Op{}
	for _, o := range ops {
		byName[o.Schema.Name] = append(byName[o.Schema.Name], o)
	}
	taken := map[string]bool{}
	// The hand-written names of package aten (types.go, call.go, callop.go).
	for _, reserved := range []string{"Scalar", "Options", "Layout", "MemoryFormat", "Int", "Float", "Bool", "Str",
		"DType", "Device", "CheckShim", "CallOp", "Ops", "IntScalar", "FloatScalar", "BoolScalar", "Schema", "Default",
		"Arg", "NamedArg", "Dimname", "Results", "I", "F", "B", "D", "Dev", "S", "Strided", "Sparse", "ContiguousFormat",
		"PreserveFormat", "ChannelsLast", "ChannelsLast3d", "ReductionNone", "ReductionMean", "ReductionSum"} {
		taken[reserved] = true
	}
	for _, o := range ops {
		name := o.Schema.Name
		inplace := strings.HasSuffix(name, "_") && !strings.HasSuffix(name, "__")
		base := strings.TrimSuffix(name, "_")
		g := camel(base)
		if strings.HasPrefix(name, "_") {
			g = "Internal" + g
		}
		suffix := ""
		if inplace {
			suffix = "_"
		}
		if !primary(o, byName[name]) || taken[g+suffix] {
			// A primary overload whose name another op has taken keeps its overload name too
			// (scatter.reduce is ScatterReduce, so scatter_reduce.two is ScatterReduceTwo).
			g += camel(o.Schema.Overload)
		}
		g += suffix
		for n := 2; taken[g]; n++ {
			g = strings.TrimSuffix(g, "_") + fmt.Sprint(n)
			if inplace {
				g += "_"
			}
		}
		taken[g] = true
		o.Go = g
	}
}

func primary(o *Op, all []*Op) bool {
	if o.Schema.Overload == "" {
		return true
	}
	if isOut(o) {
		return len(all) == 1
	}
	var plain []*Op // the generated overloads that are not out= variants
	for _, x := range all {
		if x.Schema.Overload == "" {
			return false
		}
		if !isOut(x) {
			plain = append(plain, x)
		}
	}
	if len(plain) == 1 {
		return true
	}
	return o.Schema.Overload == "Tensor"
}

// isOut says whether o is an out= variant: it writes into keyword arguments.
func isOut(o *Op) bool {
	for _, a := range o.Schema.Args {
		if a.KwOnly && a.Mutable() {
			return true
		}
	}
	return false
}

// tableHash identifies the op table: the Go side and the shim must have been generated from
// the same one (ids are indexes into it).
func tableHash(ops []*Op) string {
	h := sha256.New()
	for _, o := range ops {
		fmt.Fprintf(h, "%d %s\n", o.ID, o.Schema.Text)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// partition splits ops into n ranges of about the same size, in id order.
func partition(ops []*Op, n int) [][]*Op {
	if n < 1 {
		n = 1
	}
	var out [][]*Op
	per := (len(ops) + n - 1) / n
	for i := 0; i < len(ops); i += per {
		out = append(out, ops[i:min(i+per, len(ops))])
	}
	return out
}
