package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"
)

// maxStreams bounds the event streams open at once.
const maxStreams = 64

// heartbeat is how often an idle event stream gets a comment line (so proxies and the browser
// see it is alive).
const heartbeat = 15 * time.Second

// hub watches the runs while at least one browser listens, and tells each listener what changed.
// Events are hints — "metrics of run exp1 changed, now at step 1200" — never the data itself:
// a browser that falls behind loses hints, not data, and asks for what is new since its last step.
type hub struct {
	s       *Server
	mu      sync.Mutex
	subs    map[*listener]struct{}
	running bool
	done    chan struct{} // closed at shutdown
	closed  bool
}

type listener struct {
	run string // "" for every run
	ch  chan []byte
}

// Event is what an event stream carries (the data of an SSE message, as JSON).
type Event struct {
	Kind    string   `json:"kind"` // metrics, ledger, status, timing, system, gallery, runs
	Run     string   `json:"run,omitempty"`
	Version uint64   `json:"version,omitempty"`
	Step    *int64   `json:"step,omitempty"` // metrics: the newest step
	Seq     *int64   `json:"seq,omitempty"`  // ledger: the newest seq
	Runs    []string `json:"runs,omitempty"` // runs: the run names
}

func newHub(s *Server) *hub {
	return &hub{s: s, subs: map[*listener]struct{}{}, done: make(chan struct{})}
}

func (h *hub) add(run string) (*listener, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, fmt.Errorf("the server is shutting down")
	}
	if len(h.subs) >= maxStreams {
		return nil, fmt.Errorf("too many event streams open (%d)", maxStreams)
	}
	l := &listener{run: run, ch: make(chan []byte, 32)}
	h.subs[l] = struct{}{}
	if !h.running {
		h.running = true
		go h.watch()
	}
	return l, nil
}

func (h *hub) remove(l *listener) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, l)
}

func (h *hub) shutdown() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// watch polls the runs that listeners want until none is left.
func (h *hub) watch() {
	t := time.NewTicker(h.s.poll)
	defer t.Stop()
	var names []string
	// The versions of each run's kinds last announced. A request's refresh (every API call
	// reads what is new) can find a change before this loop does; the version it bumped is
	// announced here all the same.
	told := map[string]map[string]uint64{}
	versions := func(r *run) map[string]uint64 { // what the run holds now, the page loads itself
		m := map[string]uint64{}
		for _, kind := range kinds {
			m[kind] = r.version(kind)
		}
		return m
	}
	for _, r := range h.s.runs.list() { // as the first listener connects
		told[r.name] = versions(r)
	}
	for {
		select {
		case <-h.done:
			h.mu.Lock()
			h.running = false
			h.mu.Unlock()
			return
		case <-t.C:
		}
		h.mu.Lock()
		if len(h.subs) == 0 {
			h.running = false
			h.mu.Unlock()
			return
		}
		want, all := map[string]bool{}, false
		for l := range h.subs {
			if l.run == "" {
				all = true
			}
			want[l.run] = true
		}
		h.mu.Unlock()

		runs := h.s.runs.list()
		now := make([]string, len(runs))
		for i, r := range runs {
			now[i] = r.name
		}
		if names != nil && !slices.Equal(names, now) {
			h.send("", Event{Kind: "runs", Runs: now})
		}
		names = now
		for _, r := range runs {
			if !all && !want[r.name] {
				continue
			}
			if told[r.name] == nil { // a run that appeared since
				told[r.name] = versions(r)
			}
			r.refresh(time.Now(), false)
			for _, kind := range kinds {
				v := r.version(kind)
				if v == told[r.name][kind] {
					continue
				}
				told[r.name][kind] = v
				ev := Event{Kind: kind, Run: r.name, Version: v}
				switch kind {
				case kindMetrics:
					step, _ := r.metrics.Last()
					ev.Step = &step
				case kindLedger:
					seq, _, _ := r.ledger.summary()
					ev.Seq = &seq
				}
				h.send(r.name, ev)
			}
		}
	}
}

// send gives ev to the listeners of run (every listener when run is ""); a listener whose
// queue is full misses it.
func (h *hub) send(run string, ev Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for l := range h.subs {
		if run == "" || l.run == "" || l.run == run {
			select {
			case l.ch <- b:
			default:
			}
		}
	}
}

// handleEvents is GET /api/events[?run=NAME]: a Server-Sent Events stream of Event.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("run")
	if name != "" {
		if _, err := s.runs.get(name); err != nil {
			httpError(w, http.StatusNotFound, err.Error())
			return
		}
	}
	l, err := s.hub.add(name)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer s.hub.remove(l)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	hello, _ := json.Marshal(Event{Kind: "hello", Run: name})
	fmt.Fprintf(w, "event: hello\ndata: %s\n\n", hello)
	if rc.Flush() != nil {
		return
	}
	beat := time.NewTicker(heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.hub.done:
			return
		case <-beat.C:
			fmt.Fprint(w, ": ping\n\n")
		case b := <-l.ch:
			var ev Event
			json.Unmarshal(b, &ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, b)
		}
		if rc.Flush() != nil {
			return
		}
	}
}
