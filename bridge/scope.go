package bridge

/*
#include "hotcb_torch.h"
#include "handles.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A training step creates a handful of tensors it drops at once: activations, logits, the loss
// and, through it, the autograd graph. Left to the garbage collector they are freed late, in
// batches and on whatever thread drains the queue, which on small models costs more than the
// math (see bench/README.md). Scope gives Go what C++ scopes and Python's reference counts give
// those languages: every tensor the step created is freed when the step returns.
//
// How a tensor is known to belong to a scope: Scope locks its goroutine to its OS thread (no
// other goroutine runs there until it returns) and stores a slot number in a thread-local
// variable of the shim. When any scope is active, wrap asks the shim for the calling thread's
// slot; a tensor made on a scoped thread is owned by that slot's Scope and gets no garbage
// collector cleanup. Goroutines started inside the scope run on other threads and are not
// covered: their tensors are garbage collected as usual.

// maxScopes bounds the scopes active at once across all goroutines. Beyond it Scope still runs
// its function, on a locked thread, but leaves the tensors to the garbage collector.
const maxScopes = 1 << 12

var (
	activeScopes atomic.Int32
	scopeMu      sync.Mutex
	scopeFree    []int32               // released slots
	scopeNext    int32             = 1 // next never-used slot; 0 means "no scope"
	scopeTab     [maxScopes]*scope     // written by the owning goroutine only (see Scope)
)

// scope is one active Scope call.
type scope struct {
	slot  int32
	owned []*Tensor
	buf   []C.hc_tensor // reused by release
}

// Scope runs f and then frees every tensor created by this goroutine while f ran, except those
// passed to Keep — what leaving a C++ block or dropping Python references does. A training step
// written inside a Scope frees its activations, loss and autograd graph at once instead of
// leaving them to the garbage collector; on the tiny-MLP benchmark that is most of the gap to C++.
//
// Using a tensor after its scope has ended panics with an error wrapping ErrFreed, so a tensor
// that must outlive the step (a loss kept for logging, a lazily created optimizer state, a cache)
// must be passed to Keep, or copied out with Item/Float32s first. Tensors that existed before
// Scope began (model parameters, inputs) are not touched: their in-place updates and new .grad
// values stay.
//
// f runs with the goroutine locked to its OS thread (runtime.LockOSThread), which also keeps
// libtorch's thread-local grad mode and allocator caches stable. Goroutines started by f are not
// covered, and f must not call runtime.UnlockOSThread more often than it calls LockOSThread (the
// scope is bound to the thread). Scopes nest: tensors are owned by the innermost one. If f
// panics, the tensors are freed and the panic continues. Like Free, the end of a scope must not
// race with another goroutine's use of its tensors.
func Scope(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s := openScope()
	if s == nil {
		f()
		return
	}
	prev := int32(C.hc_scope_set(C.int32_t(s.slot)))
	defer func() {
		C.hc_scope_set(C.int32_t(prev))
		s.release()
		closeScope(s)
	}()
	f()
}

// Keep takes t out of its scope: it is no longer freed when the scope ends but, like any tensor
// made outside a scope, when it is garbage collected or freed. Keep of a tensor that belongs to
// no scope (or of nil) does nothing. It returns t.
func Keep(t *Tensor) *Tensor {
	if t == nil || t.scope == nil || t.h == nil {
		return t
	}
	t.scope = nil
	t.cleanup = runtime.AddCleanup(t, releaseHandle, t.h)
	return t
}

// InScope reports whether t is owned by a Scope (and so will be freed when it ends).
func InScope(t *Tensor) bool { return t != nil && t.scope != nil }

func openScope() *scope {
	scopeMu.Lock()
	var slot int32
	switch {
	case len(scopeFree) > 0:
		slot = scopeFree[len(scopeFree)-1]
		scopeFree = scopeFree[:len(scopeFree)-1]
	case scopeNext < maxScopes:
		slot = scopeNext
		scopeNext++
	}
	scopeMu.Unlock()
	if slot == 0 {
		return nil
	}
	s := scopeTab[slot]
	if s == nil {
		s = &scope{slot: slot}
		scopeTab[slot] = s
	}
	activeScopes.Add(1)
	return s
}

func closeScope(s *scope) {
	activeScopes.Add(-1)
	scopeMu.Lock()
	scopeFree = append(scopeFree, s.slot)
	scopeMu.Unlock()
}

// adopt makes t owned by the scope of the calling thread, if there is one.
func adopt(t *Tensor) bool {
	slot := int32(C.hc_scope_current())
	if slot <= 0 || slot >= maxScopes {
		return false
	}
	// The slot is set only on this goroutine's locked thread, so scopeTab[slot] was written by
	// this goroutine.
	s := scopeTab[slot]
	t.scope = s
	s.owned = append(s.owned, t)
	return true
}

// release frees the tensors the scope still owns, in one call into the shim.
func (s *scope) release() {
	hs := s.buf[:0]
	for i, t := range s.owned {
		if t.scope == s && t.h != nil {
			hs = append(hs, t.h)
			t.h = nil
			t.scope = nil
		}
		s.owned[i] = nil
	}
	s.owned = s.owned[:0]
	if len(hs) > 0 {
		C.hcw_tensor_free_many(words(&hs[0]), C.int(len(hs)))
		clear(hs)
	}
	s.buf = hs
}

// Unscoped runs f with the calling goroutine's Scope suspended: tensors f creates are garbage
// collected (or freed) as if no Scope were active. Code that keeps what it creates beyond the step
// — a controller loading a callback, a cache filled lazily — runs inside it when it may be called
// from a scoped step.
func Unscoped(f func()) {
	if activeScopes.Load() == 0 {
		f()
		return
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := C.hc_scope_set(0)
	defer C.hc_scope_set(prev)
	f()
}
