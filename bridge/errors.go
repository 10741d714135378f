package bridge

import (
	"errors"
	"fmt"
)

// ErrFreed is wrapped by the error raised when a freed tensor is used or freed again.
var ErrFreed = errors.New("use of a freed tensor")

// Error is what every failing tensor operation panics with (and what file and device functions
// return): the bridge operation and the message libtorch gave.
type Error struct {
	Op  string // bridge operation, e.g. "matmul"
	Msg string // libtorch's message (or ours for argument errors)
	Err error  // a sentinel such as ErrFreed, if any
}

func (e *Error) Error() string { return "torch: " + e.Op + ": " + e.Msg }

// Unwrap lets errors.Is(err, ErrFreed) work.
func (e *Error) Unwrap() error { return e.Err }

func freedError(op string) *Error { return &Error{Op: op, Msg: ErrFreed.Error(), Err: ErrFreed} }

func argError(op, format string, args ...any) *Error {
	return &Error{Op: op, Msg: fmt.Sprintf(format, args...)}
}

// Try runs f and returns the *Error that a tensor operation inside it panicked with. Other
// panics are not errors of the bridge and propagate unchanged.
func Try(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(*Error); ok {
				err = e
				return
			}
			panic(r)
		}
	}()
	f()
	return nil
}
