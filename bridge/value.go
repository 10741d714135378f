package bridge

// #include "hotcb_torch.h"
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// Tags of Value.Codes.
const (
	TagNone   = iota // None
	TagBool          // a bool: the next code is 0 or 1
	TagInt           // an int: the next code is its value
	TagFloat         // a float: the next of Floats
	TagStr           // a str: the next of Strings
	TagTensor        // a tensor: the next of Tensors
	TagList          // a list: the next code is its length n, then n values
	TagTuple         // a tuple: the next code is its length n, then n values
	TagDict          // a dict: the next code is its length n, then n pairs of key (TagInt or TagStr) and value
)

// Value is a Python value — None, bool, int, float, str, tensors, and lists, tuples and dicts of
// them — in the prefix form EncodeValue writes in torch.save's format: Codes holds the tags in
// depth-first order, each followed by its own ints (a bool, an int, a length); the floats,
// strings and tensors follow in Floats, Strings and Tensors, in the order their tags appear.
// Build one with its methods, containers first:
//
//	var v bridge.Value
//	v.Dict(2)
//	v.Str("step"); v.Int(3)
//	v.Str("betas"); v.Tuple(2); v.Float(0.9); v.Float(0.999)
//
// is {"step": 3, "betas": (0.9, 0.999)}. It is what torch.optim's state_dict() needs (int keys,
// a list of group dicts, tuples, None) and SaveNamed's nested dicts of tensors cannot express.
type Value struct {
	Codes   []int64
	Floats  []float64
	Strings []string
	Tensors []*Tensor
}

// None appends None.
func (v *Value) None() { v.Codes = append(v.Codes, TagNone) }

// Bool appends a bool.
func (v *Value) Bool(b bool) {
	n := int64(0)
	if b {
		n = 1
	}
	v.Codes = append(v.Codes, TagBool, n)
}

// Int appends an int.
func (v *Value) Int(n int64) { v.Codes = append(v.Codes, TagInt, n) }

// Float appends a float.
func (v *Value) Float(f float64) {
	v.Codes = append(v.Codes, TagFloat)
	v.Floats = append(v.Floats, f)
}

// Str appends a str.
func (v *Value) Str(s string) {
	v.Codes = append(v.Codes, TagStr)
	v.Strings = append(v.Strings, s)
}

// Tensor appends a tensor (written detached, from the CPU).
func (v *Value) Tensor(t *Tensor) {
	v.Codes = append(v.Codes, TagTensor)
	v.Tensors = append(v.Tensors, t)
}

// List starts a list of the n values appended next.
func (v *Value) List(n int) { v.Codes = append(v.Codes, TagList, int64(n)) }

// Tuple starts a tuple of the n values appended next.
func (v *Value) Tuple(n int) { v.Codes = append(v.Codes, TagTuple, int64(n)) }

// Dict starts a dict of the n key-value pairs appended next (keys all int or all str).
func (v *Value) Dict(n int) { v.Codes = append(v.Codes, TagDict, int64(n)) }

// Append appends a whole value built elsewhere (an optimizer's state dict inside a checkpoint).
func (v *Value) Append(w *Value) {
	v.Codes = append(v.Codes, w.Codes...)
	v.Floats = append(v.Floats, w.Floats...)
	v.Strings = append(v.Strings, w.Strings...)
	v.Tensors = append(v.Tensors, w.Tensors...)
}

// NestedDict appends items as a dict nested at sep in their names — with sep "/", "model/fc.weight"
// is {"model": {"fc.weight": …}} — in the order the names first appear. A name given twice, or
// one that needs a tensor to be a dict ("a" and "a/b"), is a *NameError; nothing is appended then.
func (v *Value) NestedDict(items []Named, sep string) error {
	root := &nameTree{}
	for _, it := range items {
		if err := root.add(it.Name, it.Name, "", sep, it.Tensor); err != nil {
			return err
		}
	}
	root.write(v)
	return nil
}

// NameError is a name NestedDict cannot place: Name is given twice (Duplicate), or it nests under
// Prefix, which names a tensor.
type NameError struct {
	Name, Prefix string
	Duplicate    bool
}

func (e *NameError) Error() string {
	if e.Duplicate {
		return fmt.Sprintf("duplicate name %q", e.Name)
	}
	return fmt.Sprintf("name %q nests under a tensor", e.Name)
}

// nameTree is NestedDict's dicts before they are written: keys in first-seen order, each a
// tensor or a sub-dict.
type nameTree struct {
	keys []string
	leaf map[string]*Tensor
	sub  map[string]*nameTree
}

func (n *nameTree) add(name, rest, prefix, sep string, t *Tensor) error {
	if n.leaf == nil {
		n.leaf, n.sub = map[string]*Tensor{}, map[string]*nameTree{}
	}
	head, tail, nested := strings.Cut(rest, sep)
	at := prefix + head
	_, isLeaf := n.leaf[head]
	switch {
	case nested && isLeaf:
		return &NameError{Name: name, Prefix: at}
	case nested:
		c := n.sub[head]
		if c == nil {
			c = &nameTree{}
			n.sub[head] = c
			n.keys = append(n.keys, head)
		}
		return c.add(name, tail, at+sep, sep, t)
	case isLeaf || n.sub[head] != nil:
		return &NameError{Name: name, Prefix: at, Duplicate: true}
	}
	n.leaf[head] = t
	n.keys = append(n.keys, head)
	return nil
}

func (n *nameTree) write(v *Value) {
	v.Dict(len(n.keys))
	for _, k := range n.keys {
		v.Str(k)
		if t, ok := n.leaf[k]; ok {
			v.Tensor(t)
		} else {
			n.sub[k].write(v)
		}
	}
}

// Check reports the first thing wrong with v's streams — a truncated or unknown code, a stream
// that runs out or has values left over, a dict key that is not an int or str or mixes the two
// or repeats, a nil or freed tensor, a NUL in a string — by encoding it: the shim reads the
// streams and is the one place that validates them.
func (v *Value) Check() error {
	_, err := EncodeValue(v)
	return err
}

// valueStreams is a Value as the shim reads it (hc_save_value, hc_jit_call): each stream with
// a sentinel element, so that a pointer to its first element is valid even when it is empty, and
// the strings NUL-terminated one after the other. All of it is Go memory without Go pointers in
// it: the shim copies what it reads before it returns.
type valueStreams struct {
	codes  []int64
	floats []float64
	strs   []byte
	hs     []C.hc_tensor
}

// streamsOf lays v out for the shim; a string holding a NUL, the one thing the stream cannot
// carry, is an error. Freed tensors go as nil handles: the shim refuses them.
func streamsOf(op string, v *Value) (*valueStreams, error) {
	s := &valueStreams{hs: make([]C.hc_tensor, len(v.Tensors)+1)}
	for _, str := range v.Strings {
		if strings.IndexByte(str, 0) >= 0 {
			return nil, &Error{Op: op, Msg: fmt.Sprintf("string %q contains a NUL byte", str)}
		}
		s.strs = append(append(s.strs, str...), 0)
	}
	s.strs = append(s.strs, 0)
	for i, t := range v.Tensors {
		if t != nil {
			s.hs[i] = t.h
		}
	}
	s.codes = append(v.Codes[:len(v.Codes):len(v.Codes)], 0)
	s.floats = append(v.Floats[:len(v.Floats):len(v.Floats)], 0)
	return s, nil
}

func (s *valueStreams) codesP() *C.int64_t     { return (*C.int64_t)(unsafe.Pointer(&s.codes[0])) }
func (s *valueStreams) floatsP() *C.double     { return (*C.double)(unsafe.Pointer(&s.floats[0])) }
func (s *valueStreams) strsP() *C.char         { return (*C.char)(unsafe.Pointer(&s.strs[0])) }
func (s *valueStreams) tensorsP() *C.hc_tensor { return &s.hs[0] }

// EncodeValue serialises v in torch.save's format (torch.load returns the Python value). A
// malformed value is an error naming what is wrong (see Check).
func EncodeValue(v *Value) ([]byte, error) {
	if v == nil {
		return nil, &Error{Op: "save", Msg: "nil value"}
	}
	st, err := streamsOf("save", v)
	if err != nil {
		return nil, err
	}
	var buf *C.char
	var n C.int64_t
	e := C.hc_save_value(st.codesP(), C.int64_t(len(v.Codes)), st.floatsP(), C.int64_t(len(v.Floats)),
		st.strsP(), C.int64_t(len(v.Strings)), st.tensorsP(), C.int64_t(len(v.Tensors)), &buf, &n)
	runtime.KeepAlive(v.Tensors)
	if err := checkErr("save", e); err != nil {
		return nil, err
	}
	defer C.hc_free(unsafe.Pointer(buf))
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), nil
}

// SaveValue writes v to path in torch.save's format (atomically: a reader sees the old file or
// the new one).
func SaveValue(path string, v *Value) error {
	b, err := EncodeValue(v)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// String renders the value as Python prints it (tensors as tensor(<shape>)), for logs and
// tests; a malformed value renders what it can and then <bad …>.
func (v *Value) String() string {
	var b strings.Builder
	c, f, s, t := 0, 0, 0, 0
	ok := func(i, n int) bool { return i < n }
	var walk func()
	walk = func() {
		if !ok(c, len(v.Codes)) {
			b.WriteString("<bad: codes end>")
			return
		}
		tag := v.Codes[c]
		c++
		arg := func() int64 {
			if !ok(c, len(v.Codes)) {
				return 0
			}
			c++
			return v.Codes[c-1]
		}
		switch tag {
		case TagNone:
			b.WriteString("None")
		case TagBool:
			b.WriteString(map[bool]string{false: "False", true: "True"}[arg() != 0])
		case TagInt:
			fmt.Fprintf(&b, "%d", arg())
		case TagFloat:
			if ok(f, len(v.Floats)) {
				fmt.Fprintf(&b, "%v", v.Floats[f])
			}
			f++
		case TagStr:
			if ok(s, len(v.Strings)) {
				fmt.Fprintf(&b, "%q", v.Strings[s])
			}
			s++
		case TagTensor:
			if ok(t, len(v.Tensors)) && v.Tensors[t] != nil && v.Tensors[t].h != nil {
				fmt.Fprintf(&b, "tensor(%v)", v.Tensors[t].Shape())
			} else {
				b.WriteString("tensor(<freed>)")
			}
			t++
		case TagList, TagTuple, TagDict:
			n := int(arg())
			brackets := map[int64][2]string{TagList: {"[", "]"}, TagTuple: {"(", ")"}, TagDict: {"{", "}"}}[tag]
			b.WriteString(brackets[0])
			for i := 0; i < n && c < len(v.Codes); i++ {
				if i > 0 {
					b.WriteString(", ")
				}
				if tag == TagDict {
					walk()
					b.WriteString(": ")
				}
				walk()
			}
			if tag == TagTuple && n == 1 {
				b.WriteString(",")
			}
			b.WriteString(brackets[1])
		default:
			fmt.Fprintf(&b, "<bad tag %d>", tag)
		}
	}
	if len(v.Codes) > 0 {
		walk()
	}
	return b.String()
}
