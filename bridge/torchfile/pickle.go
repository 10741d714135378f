package torchfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
)

// machine is a pickle virtual machine (protocols 2 to 5) that builds values instead of calling
// anything: globals become Global markers, and REDUCE/NEWOBJ/BUILD on them are interpreted for
// the few callables torch.save uses.
type machine struct {
	in         []byte
	pos        int
	stack      []any
	marks      []int
	memo       map[int]any
	persistent func(pid any) (any, error)
}

type mark struct{}

var errTruncated = errors.New("pickle is truncated")

func (m *machine) read(n int) ([]byte, error) {
	if n < 0 || m.pos+n > len(m.in) {
		return nil, errTruncated
	}
	b := m.in[m.pos : m.pos+n]
	m.pos += n
	return b, nil
}

func (m *machine) line() (string, error) {
	for i := m.pos; i < len(m.in); i++ {
		if m.in[i] == '\n' {
			s := string(m.in[m.pos:i])
			m.pos = i + 1
			return s, nil
		}
	}
	return "", errTruncated
}

func (m *machine) push(v any) { m.stack = append(m.stack, v) }

func (m *machine) pop() (any, error) {
	if len(m.stack) == 0 {
		return nil, errors.New("pickle stack underflow")
	}
	if len(m.marks) > 0 && len(m.stack) == m.marks[len(m.marks)-1] {
		return nil, errors.New("pickle pops past a mark")
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) == 0 {
		return nil, errors.New("pickle stack underflow")
	}
	return m.stack[len(m.stack)-1], nil
}

// popMark returns the items pushed since the last MARK.
func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, errors.New("pickle has no mark to pop")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := append([]any(nil), m.stack[k:]...)
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) uint(n int) (uint64, error) {
	b, err := m.read(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

const maxMemo = 1 << 24

func (m *machine) run() (any, error) {
	for {
		if m.pos >= len(m.in) {
			return nil, errTruncated
		}
		op := m.in[m.pos]
		at := m.pos
		m.pos++
		if err := m.step(op); err != nil {
			if err == errStop {
				v, err := m.pop()
				if err != nil {
					return nil, err
				}
				return v, nil
			}
			return nil, fmt.Errorf("pickle opcode 0x%02x at byte %d: %w", op, at, err)
		}
	}
}

var errStop = errors.New("stop")

func (m *machine) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		_, err := m.read(1)
		return err
	case 0x95: // FRAME
		_, err := m.read(8)
		return err
	case '.': // STOP
		return errStop
	case '(': // MARK
		m.marks = append(m.marks, len(m.stack))
	case '}': // EMPTY_DICT
		m.push(&Dict{})
	case ']': // EMPTY_LIST
		m.push(&List{})
	case ')': // EMPTY_TUPLE
		m.push(Tuple{})
	case 'N':
		m.push(nil)
	case 0x88:
		m.push(true)
	case 0x89:
		m.push(false)
	case 'K': // BININT1
		v, err := m.uint(1)
		m.push(int64(v))
		return err
	case 'M': // BININT2
		v, err := m.uint(2)
		m.push(int64(v))
		return err
	case 'J': // BININT
		v, err := m.uint(4)
		m.push(int64(int32(uint32(v))))
		return err
	case 0x8a, 0x8b: // LONG1, LONG4
		size := 1
		if op == 0x8b {
			size = 4
		}
		n, err := m.uint(size)
		if err != nil {
			return err
		}
		b, err := m.read(int(n))
		if err != nil {
			return err
		}
		m.push(decodeLong(b))
	case 'G': // BINFLOAT (big-endian)
		b, err := m.read(8)
		if err != nil {
			return err
		}
		m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'X', 0x8c, 0x8d, 'T', 'U', 'B', 'C', 0x8e: // strings and bytes
		size := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8, 'T': 4, 'U': 1, 'B': 4, 'C': 1, 0x8e: 8}[op]
		n, err := m.uint(size)
		if err != nil {
			return err
		}
		if n > uint64(len(m.in)) {
			return errTruncated
		}
		b, err := m.read(int(n))
		if err != nil {
			return err
		}
		if op == 'B' || op == 'C' || op == 0x8e {
			m.push(append([]byte(nil), b...))
		} else {
			m.push(string(b))
		}
	case 'q', 'r', 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
		var idx uint64
		var err error
		switch op {
		case 'q':
			idx, err = m.uint(1)
		case 'r':
			idx, err = m.uint(4)
		default:
			idx = uint64(len(m.memo))
		}
		if err != nil {
			return err
		}
		if idx > maxMemo {
			return fmt.Errorf("memo index %d too large", idx)
		}
		v, err := m.top()
		if err != nil {
			return err
		}
		m.memo[int(idx)] = v
	case 'h', 'j': // BINGET, LONG_BINGET
		size := 1
		if op == 'j' {
			size = 4
		}
		idx, err := m.uint(size)
		if err != nil {
			return err
		}
		v, ok := m.memo[int(idx)]
		if !ok {
			return fmt.Errorf("memo key %d not found", idx)
		}
		m.push(v)
	case 't': // TUPLE
		items, err := m.popMark()
		if err != nil {
			return err
		}
		m.push(Tuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1..3
		n := int(op-0x85) + 1
		items := make(Tuple, n)
		for i := n - 1; i >= 0; i-- {
			v, err := m.pop()
			if err != nil {
				return err
			}
			items[i] = v
		}
		m.push(items)
	case 'l': // LIST
		items, err := m.popMark()
		if err != nil {
			return err
		}
		m.push(&List{Items: items})
	case 'd': // DICT
		items, err := m.popMark()
		if err != nil {
			return err
		}
		d := &Dict{}
		if err := setItems(d, items); err != nil {
			return err
		}
		m.push(d)
	case 's': // SETITEM
		v, err := m.pop()
		if err != nil {
			return err
		}
		k, err := m.pop()
		if err != nil {
			return err
		}
		top, err := m.top()
		if err != nil {
			return err
		}
		return setItems(top, []any{k, v})
	case 'u': // SETITEMS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		top, err := m.top()
		if err != nil {
			return err
		}
		return setItems(top, items)
	case 'a': // APPEND
		v, err := m.pop()
		if err != nil {
			return err
		}
		return m.appendTop([]any{v})
	case 'e': // APPENDS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.appendTop(items)
	case '0': // POP
		_, err := m.pop()
		return err
	case '1': // POP_MARK
		_, err := m.popMark()
		return err
	case '2': // DUP
		v, err := m.top()
		if err != nil {
			return err
		}
		m.push(v)
	case 'c': // GLOBAL
		mod, err := m.line()
		if err != nil {
			return err
		}
		name, err := m.line()
		if err != nil {
			return err
		}
		m.push(Global{mod, name})
	case 0x93: // STACK_GLOBAL
		name, err := m.pop()
		if err != nil {
			return err
		}
		mod, err := m.pop()
		if err != nil {
			return err
		}
		ms, ok1 := mod.(string)
		ns, ok2 := name.(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL needs two strings")
		}
		m.push(Global{ms, ns})
	case 'Q': // BINPERSID
		pid, err := m.pop()
		if err != nil {
			return err
		}
		if m.persistent == nil {
			return errors.New("persistent id without a loader")
		}
		v, err := m.persistent(pid)
		if err != nil {
			return err
		}
		m.push(v)
	case 'R', 0x81: // REDUCE, NEWOBJ
		args, err := m.pop()
		if err != nil {
			return err
		}
		fn, err := m.pop()
		if err != nil {
			return err
		}
		t, ok := args.(Tuple)
		if !ok {
			return fmt.Errorf("call arguments are %T, not a tuple", args)
		}
		v, err := call(fn, t)
		if err != nil {
			return err
		}
		m.push(v)
	case 'b': // BUILD
		state, err := m.pop()
		if err != nil {
			return err
		}
		top, err := m.top()
		if err != nil {
			return err
		}
		if o, ok := top.(*Object); ok {
			o.State = state
		}
		// Dicts (OrderedDict's _metadata) and tensors: the state carries nothing we keep.
	default:
		return fmt.Errorf("unsupported pickle opcode 0x%02x", op)
	}
	return nil
}

func (m *machine) appendTop(items []any) error {
	top, err := m.top()
	if err != nil {
		return err
	}
	switch l := top.(type) {
	case *List:
		l.Items = append(l.Items, items...)
	case *Object:
		l.Args = append(l.Args, items...)
	default:
		return fmt.Errorf("append to %T", top)
	}
	return nil
}

func setItems(target any, kv []any) error {
	if len(kv)%2 != 0 {
		return errors.New("odd number of dict items")
	}
	switch d := target.(type) {
	case *Dict:
		for i := 0; i < len(kv); i += 2 {
			if !hashable(kv[i]) {
				return fmt.Errorf("unhashable dict key %T", kv[i])
			}
			d.Set(kv[i], kv[i+1])
		}
		return nil
	case *Object:
		d.Args = append(d.Args, kv...)
		return nil
	}
	return fmt.Errorf("set item on %T", target)
}

func hashable(k any) bool {
	switch k.(type) {
	case string, int64, float64, bool, nil, Global:
		return true
	}
	return false
}

func decodeLong(b []byte) any {
	if len(b) == 0 {
		return int64(0)
	}
	if len(b) <= 8 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		shift := uint(64 - 8*len(b))
		return int64(v<<shift) >> shift // sign-extend
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

func ints(v any) ([]int64, error) {
	var items []any
	switch x := v.(type) {
	case Tuple:
		items = x
	case *List:
		items = x.Items
	default:
		return nil, fmt.Errorf("expected a tuple of ints, got %T", v)
	}
	out := make([]int64, len(items))
	for i, e := range items {
		n, ok := e.(int64)
		if !ok {
			return nil, fmt.Errorf("expected an int, got %T", e)
		}
		out[i] = n
	}
	return out, nil
}

// call interprets the callables torch.save uses; anything else becomes an Object.
func call(fn any, args Tuple) (any, error) {
	g, ok := fn.(Global)
	if !ok {
		return &Object{Args: args}, nil
	}
	switch g.String() {
	case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
		if len(args) < 4 {
			return nil, fmt.Errorf("%s with %d arguments", g, len(args))
		}
		s, ok := args[0].(*Storage)
		if !ok {
			return nil, fmt.Errorf("%s: first argument is %T, not a storage", g, args[0])
		}
		off, ok := args[1].(int64)
		if !ok {
			return nil, fmt.Errorf("%s: storage offset is %T", g, args[1])
		}
		size, err := ints(args[2])
		if err != nil {
			return nil, fmt.Errorf("%s: size: %w", g, err)
		}
		stride, err := ints(args[3])
		if err != nil {
			return nil, fmt.Errorf("%s: stride: %w", g, err)
		}
		t := &TensorRef{Storage: s, Offset: off, Size: size, Stride: stride}
		if len(args) > 4 {
			t.RequiresGrad, _ = args[4].(bool)
		}
		if err := t.Check(); err != nil {
			return nil, err
		}
		return t, nil
	case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
		if len(args) < 2 {
			return nil, fmt.Errorf("%s with %d arguments", g, len(args))
		}
		t, ok := args[0].(*TensorRef)
		if !ok {
			return nil, fmt.Errorf("%s: data is %T", g, args[0])
		}
		t.RequiresGrad, _ = args[1].(bool)
		return t, nil
	case "collections.OrderedDict", "builtins.dict":
		d := &Dict{}
		if len(args) == 1 { // OrderedDict([(k, v), ...])
			if l, ok := args[0].(*List); ok {
				for _, e := range l.Items {
					if p, ok := e.(Tuple); ok && len(p) == 2 && hashable(p[0]) {
						d.Set(p[0], p[1])
					}
				}
			}
		}
		return d, nil
	case "torch.jit._pickle.restore_type_tag":
		if len(args) < 1 {
			return nil, errors.New("restore_type_tag without arguments")
		}
		return args[0], nil
	case "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_tensorlist",
		"torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist":
		if len(args) < 1 {
			return nil, fmt.Errorf("%s without arguments", g)
		}
		return args[0], nil
	}
	return &Object{Class: g, Args: args}, nil
}
