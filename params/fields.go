package params

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"
)

// field is one key of a struct: where it lives and what it accepts.
type field struct {
	name  string       // canonical key: the tag's name, else the field name in snake_case
	index []int        // reflect index path, through flattened embedded structs
	typ   reflect.Type // the field's type
	rules []rule       // checks from the tag, applied after conversion
}

// structInfo lists a struct type's keys in declaration order.
type structInfo struct {
	fields []field
	byNorm map[string]int // normalize(key) → index in fields
}

func (s *structInfo) lookup(key string) (int, bool) {
	i, ok := s.byNorm[normalize(key)]
	return i, ok
}

func (s *structInfo) names() []string {
	out := make([]string, len(s.fields))
	for i, f := range s.fields {
		out[i] = f.name
	}
	return out
}

type infoResult struct {
	info *structInfo
	err  error
}

// infoCache maps a struct type to its *infoResult. Only analyses started from the type itself
// are cached: a nested analysis skips the types already being checked up its stack.
var infoCache sync.Map

var durationType = reflect.TypeFor[time.Duration]()

// structInfoOf analyses t (a struct type) once: its keys, their rules, and whether every field
// type can be decoded. A problem there is the caller's bug, reported as a plain error.
func structInfoOf(t reflect.Type) (*structInfo, error) {
	if r, ok := infoCache.Load(t); ok {
		r := r.(*infoResult)
		return r.info, r.err
	}
	info, err := analyze(t, map[reflect.Type]bool{})
	infoCache.Store(t, &infoResult{info, err})
	return info, err
}

func analyze(t reflect.Type, seen map[reflect.Type]bool) (*structInfo, error) {
	seen[t] = true
	info := &structInfo{byNorm: map[string]int{}}
	var errs []error
	collect(t, t, nil, info, seen, &errs)
	return info, errors.Join(errs...)
}

// collect adds t's fields to info; root is the type being analysed, for messages.
func collect(root, t reflect.Type, index []int, info *structInfo, seen map[reflect.Type]bool, errs *[]error) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _ := sf.Tag.Lookup("hotcb")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, ruleTexts, _ := strings.Cut(tag, ",")
		idx := append(index[:len(index):len(index)], i)
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			if ruleTexts != "" {
				*errs = append(*errs, fmt.Errorf("params: %v: embedded struct %s cannot have rules", root, sf.Name))
			}
			collect(root, sf.Type, idx, info, seen, errs)
			continue
		}
		if name == "" {
			name = snake(sf.Name)
		}
		if err := checkType(sf.Type, seen); err != nil {
			*errs = append(*errs, fmt.Errorf("params: %v: field %s: %w", root, sf.Name, err))
			continue
		}
		var rules []rule
		if ruleTexts != "" {
			var err error
			if rules, err = compileRules(strings.Split(ruleTexts, ","), sf.Type); err != nil {
				*errs = append(*errs, fmt.Errorf("params: %v: field %s: %w", root, sf.Name, err))
				continue
			}
		}
		norm := normalize(name)
		if j, dup := info.byNorm[norm]; dup {
			*errs = append(*errs, fmt.Errorf("params: %v: fields %s and %s both answer to key %q",
				root, fieldPath(root, info.fields[j].index), sf.Name, name))
			continue
		}
		info.byNorm[norm] = len(info.fields)
		info.fields = append(info.fields, field{name: name, index: idx, typ: sf.Type, rules: rules})
	}
}

func fieldPath(t reflect.Type, index []int) string {
	names := make([]string, len(index))
	for i, x := range index {
		f := t.Field(x)
		names[i], t = f.Name, f.Type
	}
	return strings.Join(names, ".")
}

// checkType reports a type Decode cannot fill. seen holds the struct types already being
// checked, so recursive types (type Node struct{ Next *Node }) terminate.
func checkType(t reflect.Type, seen map[reflect.Type]bool) error {
	if isScalar(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Interface:
		if t.NumMethod() == 0 {
			return nil
		}
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return checkType(t.Elem(), seen)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("unsupported type %v (map keys must be strings)", t)
		}
		return checkType(t.Elem(), seen)
	case reflect.Struct:
		if seen[t] {
			return nil
		}
		_, err := analyze(t, seen)
		return err
	}
	return fmt.Errorf("unsupported type %v", t)
}

// isScalar reports the types converted by scalar: bool, numbers, strings and time.Duration.
func isScalar(t reflect.Type) bool {
	if t == durationType {
		return true
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

// normalize is the form keys are compared in: lower case, without '_' or '-'.
func normalize(key string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r == '-' {
			return -1
		}
		return unicode.ToLower(r)
	}, key)
}

// snake turns a Go field name into its key: EveryN → every_n, HTTPPort → http_port,
// Layer2Name → layer2_name.
func snake(name string) string {
	rs := []rune(name)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 {
				prev := rs[i-1]
				nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
				if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
					b.WriteByte('_')
				}
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}
