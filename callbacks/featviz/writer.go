package featviz

import (
	"bytes"
	"fmt"
	"image/png"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/rundir"
)

// writer encodes and writes frames on its own goroutine. Its queue is bounded: push never
// blocks, and a frame that finds the queue full is dropped and counted.
type writer struct {
	id    string
	write func(path string, data []byte) error // atomic file write; tests inject slow ones

	mu      sync.Mutex
	jobs    []job
	frames  int // jobs that are frames: what limit bounds
	limit   int
	closing bool
	wake    chan struct{} // capacity 1: "there is work or we are closing"
	done    chan struct{} // closed when run returns

	// owned by the run goroutine
	enc       png.Encoder
	galleries map[string]*gallery
	touched   map[string]bool

	written, dropped, failed atomic.Int64
	busyNs                   atomic.Int64
	lastErr                  atomic.Pointer[string]
}

// job is a frame to draw, or (fr == nil) a directory whose gallery must exist.
type job struct {
	fr  *frame
	dir string
}

func newWriter(id string, limit int, write func(string, []byte) error) *writer {
	if write == nil {
		write = writeFileAtomic
	}
	w := &writer{id: id, write: write, limit: limit, wake: make(chan struct{}, 1),
		done: make(chan struct{}), galleries: map[string]*gallery{}, touched: map[string]bool{}}
	w.enc = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &onePool{}}
	go w.run()
	return w
}

// onePool keeps the PNG encoder's buffers (about 1 MiB of deflate state) for the next frame;
// one goroutine encodes, so one slot is enough.
type onePool struct{ b *png.EncoderBuffer }

func (p *onePool) Get() *png.EncoderBuffer  { b := p.b; p.b = nil; return b }
func (p *onePool) Put(b *png.EncoderBuffer) { p.b = b }

func (w *writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// push queues a frame unless the queue is full or closing; it never blocks.
func (w *writer) push(fr *frame) bool {
	w.mu.Lock()
	if w.closing || w.frames >= w.limit {
		w.mu.Unlock()
		w.dropped.Add(1)
		return false
	}
	w.jobs = append(w.jobs, job{fr: fr})
	w.frames++
	w.mu.Unlock()
	w.signal()
	return true
}

// touch makes sure dir gets a gallery (even before any frame lands there). Not counted against
// the queue's limit.
func (w *writer) touch(dir string) {
	w.mu.Lock()
	if !w.closing {
		w.jobs = append(w.jobs, job{dir: dir})
	}
	w.mu.Unlock()
	w.signal()
}

func (w *writer) setLimit(n int) {
	w.mu.Lock()
	w.limit = n
	w.mu.Unlock()
}

func (w *writer) queued() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frames
}

func (w *writer) run() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.jobs) == 0 {
			closing := w.closing
			w.mu.Unlock()
			// Idle: bring the galleries up to date, once per burst of frames.
			w.flushGalleries(closing)
			if closing {
				return
			}
			<-w.wake
			continue
		}
		j := w.jobs[0]
		w.jobs[0] = job{}
		w.jobs = w.jobs[1:]
		if j.fr != nil {
			w.frames--
		}
		w.mu.Unlock()
		if j.fr == nil {
			w.gallery(j.dir)
			w.touched[j.dir] = true
			continue
		}
		t0 := time.Now()
		err := w.process(j.fr)
		w.busyNs.Add(int64(time.Since(t0)))
		if err != nil {
			w.failed.Add(1)
			msg := err.Error()
			w.lastErr.Store(&msg)
		} else {
			w.written.Add(1)
		}
	}
}

// close stops taking frames, waits up to timeout for the queue to drain and the galleries to be
// written, and reports what is still pending when it gives up.
func (w *writer) close(timeout time.Duration) error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.signal()
	select {
	case <-w.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("featviz %s: %d frame(s) still queued after %v; the gallery may miss them", w.id, w.queued(), timeout)
	}
}

func (w *writer) gallery(dir string) *gallery {
	g := w.galleries[dir]
	if g == nil {
		g = newGallery(w.id, dir)
		w.galleries[dir] = g
	}
	return g
}

// process draws a frame and writes its PNG (and .npy), then records it in its gallery.
func (w *writer) process(fr *frame) error {
	img, err := render(fr)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := w.enc.Encode(&buf, img); err != nil {
		return fmt.Errorf("featviz: encode %s step %d: %w", fr.layer, fr.step, err)
	}
	base := fileBase(fr.step, fr.layer)
	e := entry{layer: fr.layer, kind: fr.kind, png: base + ".png", shape: fr.shape, full: fr.full}
	if err := w.write(filepath.Join(fr.dir, e.png), buf.Bytes()); err != nil {
		return err
	}
	if fr.npy {
		b, err := encodeNPY(fr.shape, fr.data)
		if err != nil {
			return err
		}
		e.npy = base + ".npy"
		if err := w.write(filepath.Join(fr.dir, e.npy), b); err != nil {
			return err
		}
	}
	w.gallery(fr.dir).add(fr.step, e, fr.keep)
	w.touched[fr.dir] = true
	return nil
}

func (w *writer) flushGalleries(all bool) {
	for dir, g := range w.galleries {
		if !all && !w.touched[dir] {
			continue
		}
		if err := w.write(filepath.Join(dir, "index.html"), g.html()); err != nil {
			w.failed.Add(1)
			msg := err.Error()
			w.lastErr.Store(&msg)
		}
		delete(w.touched, dir)
	}
}

// writeFileAtomic writes through a temporary file and a rename, so a reader (the gallery open in
// a browser) never sees half a file.
var writeFileAtomic = rundir.ReplaceFile
