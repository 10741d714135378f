package serve

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
)

//go:embed web
var webFS embed.FS

// Limits of a request.
const (
	MaxBody      = 64 << 10 // bytes of a POST body
	MaxPoints    = 10_000   // points per series a request may ask for
	DefPoints    = 2_000    // points per series by default
	maxArgs      = 64       // arguments of a CLI command
	maxLedgerOut = 20_000   // ledger entries per response
	TokenHeader  = "X-Hotcb-Token"
)

// Backend is what the server borrows from the CLI, so that the dashboard reads and writes a run
// exactly as the hotcb commands do. cli.ServeBackend is the one hotcb serve uses.
type Backend interface {
	// StatusJSON writes what `hotcb --dir DIR status --json` prints.
	StatusJSON(dir string, w io.Writer) error
	// AppendOp checks op and appends it to DIR's hotcb.commands.jsonl as the CLI does (one
	// locked write of one line); it returns the line written.
	AppendOp(dir string, op ops.Op) (line []byte, err error)
	// Command runs `hotcb --dir DIR ARGS...` for the commands the dashboard may run (cb, opt,
	// loss, set, enable, disable, freeze, recipe export) and refuses any other.
	Command(ctx context.Context, dir string, args []string) (CommandResult, error)
}

// CommandResult is what a command did.
type CommandResult struct {
	Output string   `json:"output"`          // what it printed
	Notes  string   `json:"notes,omitempty"` // what it printed as warnings
	Lines  []string `json:"lines"`           // the lines it appended to hotcb.commands.jsonl
}

// RequestError is an error caused by the request (its arguments, its op): the server answers
// 400 with its message instead of 500.
type RequestError struct{ Err error }

func (e *RequestError) Error() string { return e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// Config says what a Server serves and how.
type Config struct {
	// RunDir is the run directory served; RunsDir, instead, a directory whose subdirectories
	// are runs (one of the two).
	RunDir, RunsDir string
	// ReadOnly turns every write off.
	ReadOnly bool
	// Token is what writes must carry in the X-Hotcb-Token header; New makes a random one when
	// it is empty (Server.Token).
	Token string
	// Hosts are the Host header values accepted (DNS rebinding: a page of another site that
	// resolves its name to 127.0.0.1 sends its own name); none means any. LoopbackHosts gives
	// them for a listener on a loopback address.
	Hosts []string
	// Poll is how often the run files are read while a browser listens (default 250 ms).
	Poll time.Duration
	// Backend writes and reads through the CLI's code. Required.
	Backend Backend
	// Version is shown on the page.
	Version string
}

// Server is the dashboard and its API.
type Server struct {
	cfg   Config
	poll  time.Duration
	runs  *runSet
	hub   *hub
	hosts map[string]bool
	mux   *http.ServeMux
	once  sync.Once
}

// New opens the run directory (or the runs directory) of cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Backend == nil {
		return nil, errors.New("serve: no Backend")
	}
	var rs *runSet
	var err error
	switch {
	case cfg.RunDir != "" && cfg.RunsDir != "":
		return nil, errors.New("serve: give a run directory or a runs directory, not both")
	case cfg.RunsDir != "":
		rs, err = newRunsDir(cfg.RunsDir)
	case cfg.RunDir != "":
		rs, err = newSingleRun(cfg.RunDir)
	default:
		return nil, errors.New("serve: no run directory")
	}
	if err != nil {
		return nil, err
	}
	if cfg.Token == "" && !cfg.ReadOnly {
		cfg.Token = NewToken()
	}
	s := &Server{cfg: cfg, poll: cfg.Poll, runs: rs, hosts: map[string]bool{}}
	if s.poll <= 0 {
		s.poll = 250 * time.Millisecond
	}
	for _, h := range cfg.Hosts {
		s.hosts[strings.ToLower(h)] = true
	}
	s.hub = newHub(s)
	s.routes()
	// Read what the runs hold now, so that the first page finds it read (a run of 100k
	// steps takes a second or more).
	go func() {
		for _, r := range rs.list() {
			r.refresh(time.Now(), true)
		}
	}()
	return s, nil
}

// NewToken is 128 random bits in hex.
func NewToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Token is what writes must carry ("" when read-only).
func (s *Server) Token() string {
	if s.cfg.ReadOnly {
		return ""
	}
	return s.cfg.Token
}

// LoopbackHosts are the Host values a browser sends to a listener on addr when addr is a
// loopback address (127.0.0.1:8080 → 127.0.0.1:8080, localhost:8080, [::1]:8080); nil for
// any other address (then any Host is accepted).
func LoopbackHosts(addr net.Addr) []string {
	ta, ok := addr.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return nil
	}
	p := strconv.Itoa(ta.Port)
	return []string{net.JoinHostPort(ta.IP.String(), p), "localhost:" + p, "127.0.0.1:" + p, "[::1]:" + p}
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// Serve serves on ln until ctx ends, then closes the event streams and shuts down (waiting up
// to 5 s for requests in flight).
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.hub.shutdown()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) { // a request still reading a large file: cut it off
		err = hs.Close()
	}
	s.Close()
	return err
}

// Close ends the event streams and closes the run directories.
func (s *Server) Close() {
	s.once.Do(func() {
		s.hub.shutdown()
		s.runs.close()
	})
}

func (s *Server) routes() {
	m := http.NewServeMux()
	web, _ := fs.Sub(webFS, "web")
	static := http.FileServerFS(web)
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(web, "index.html")
		if err != nil {
			httpError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(b)
	})
	m.Handle("GET /static/", http.StripPrefix("/static/", static))
	m.HandleFunc("GET /api/info", s.handleInfo)
	m.HandleFunc("GET /api/runs", s.handleRuns)
	m.HandleFunc("GET /api/overview", s.handleOverview)
	m.HandleFunc("GET /api/status", s.handleStatus)
	m.HandleFunc("GET /api/metrics", s.handleMetrics)
	m.HandleFunc("GET /api/series", s.handleSeries)
	m.HandleFunc("GET /api/ledger", s.handleLedger)
	m.HandleFunc("GET /api/gallery", s.handleGallery)
	m.HandleFunc("GET /api/recipe", s.handleRecipe)
	m.HandleFunc("GET /api/events", s.handleEvents)
	m.HandleFunc("POST /api/commands", s.handleCommands)
	m.HandleFunc("POST /api/cli", s.handleCLI)
	m.HandleFunc("GET /files/{run}/{path...}", s.handleFile)
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if method, ok := apiMethods[r.URL.Path]; ok {
			w.Header().Set("Allow", method)
			httpError(w, http.StatusMethodNotAllowed, r.URL.Path+" takes "+method+", not "+r.Method)
			return
		}
		httpError(w, http.StatusNotFound, "no API "+r.Method+" "+r.URL.Path+" (see the README's API table)")
	})
	s.mux = m
}

// apiMethods is the method of each API path (for a 405 to a request with another).
var apiMethods = map[string]string{"/api/info": "GET", "/api/runs": "GET", "/api/overview": "GET", "/api/status": "GET",
	"/api/metrics": "GET", "/api/series": "GET", "/api/ledger": "GET", "/api/gallery": "GET", "/api/recipe": "GET",
	"/api/events": "GET", "/api/commands": "POST", "/api/cli": "POST"}

// guard checks the Host header, sets the headers every response has and turns a panic into a
// 500 response.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				httpError(w, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", v))
			}
		}()
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		if len(s.hosts) > 0 && !s.hosts[strings.ToLower(r.Host)] {
			httpError(w, http.StatusMisdirectedRequest, fmt.Sprintf("host %q is not the address this server listens on (DNS rebinding?); open it by its address", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// httpError answers {"error": msg} with status code.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Write(append(b, '\n'))
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

// run finds the request's run (?run=NAME; the only one when absent) and reads what its files
// gained; nil after answering an error.
func (s *Server) run(w http.ResponseWriter, r *http.Request) *run {
	name := r.URL.Query().Get("run")
	if r.PathValue("run") != "" {
		name = r.PathValue("run")
	}
	rn, err := s.runs.get(name)
	if err != nil {
		code := http.StatusNotFound
		if name == "" {
			code = http.StatusBadRequest
		}
		httpError(w, code, err.Error())
		return nil
	}
	rn.refresh(time.Now(), false)
	return rn
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	names := []string{}
	for _, rn := range s.runs.list() {
		names = append(names, rn.name)
	}
	writeJSON(w, map[string]any{"version": s.cfg.Version, "read_only": s.cfg.ReadOnly, "runs_dir": s.runs.parent,
		"runs": names, "max_points": MaxPoints, "default_points": DefPoints, "token_header": TokenHeader})
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	out := []Overview{}
	for _, rn := range s.runs.list() {
		rn.refresh(now, false)
		out = append(out, rn.overview(now))
	}
	writeJSON(w, map[string]any{"runs": out})
}

func (s *Server) handleOverview(w http.ResponseWriter, r *http.Request) {
	if rn := s.run(w, r); rn != nil {
		writeJSON(w, rn.overview(time.Now()))
	}
}

// handleStatus is GET /api/status: what `hotcb status --json` prints, from the CLI's code.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	if err := rn.statusFilesInside(); err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	var buf bytes.Buffer
	if err := s.cfg.Backend.StatusJSON(rn.dir, &buf); err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// intParam reads an integer query parameter; def when absent.
func intParam(q url.Values, name string, def int64) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q is not an integer", name, v)
	}
	return n, nil
}

// seriesQuery is the range and size a metrics or series request asks for.
type seriesQuery struct {
	from, to int64
	points   int
	names    map[string]bool // nil: all
}

func parseSeriesQuery(q url.Values) (seriesQuery, error) {
	sq := seriesQuery{from: math.MinInt64, to: math.MaxInt64, points: DefPoints}
	since, err := intParam(q, "since", math.MinInt64)
	if err != nil {
		return sq, err
	}
	if since != math.MinInt64 && since < math.MaxInt64 {
		sq.from = since + 1
	}
	from, err := intParam(q, "from", math.MinInt64)
	if err != nil {
		return sq, err
	}
	sq.from = max(sq.from, from)
	if sq.to, err = intParam(q, "to", math.MaxInt64); err != nil {
		return sq, err
	}
	if sq.to < sq.from && q.Get("to") != "" {
		return sq, fmt.Errorf("to=%d is before from=%d", sq.to, sq.from)
	}
	p, err := intParam(q, "points", DefPoints)
	if err != nil {
		return sq, err
	}
	if p < 4 || p > MaxPoints {
		return sq, fmt.Errorf("points=%d: want 4 to %d", p, MaxPoints)
	}
	sq.points = int(p)
	if ns := q.Get("names"); ns != "" {
		sq.names = map[string]bool{}
		for _, n := range strings.Split(ns, ",") {
			sq.names[n] = true
		}
	}
	return sq, nil
}

// handleMetrics is GET /api/metrics?run=&since=STEP&from=&to=&points=&names=a,b: the points of
// each metric with a step after since (or in [from, to]), decimated to points per series.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	s.writeSeries(w, r, rn, rn.metrics)
}

// handleSeries is GET /api/series?kind=timing|system&...: the timing or system records as
// series (nested fields joined with dots), with the query of /api/metrics.
func (s *Server) handleSeries(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	switch k := r.URL.Query().Get("kind"); k {
	case kindTiming:
		s.writeSeries(w, r, rn, rn.timing)
	case kindSystem:
		s.writeSeries(w, r, rn, rn.system)
	default:
		httpError(w, http.StatusBadRequest, fmt.Sprintf("kind=%q: want timing or system", k))
	}
}

func (s *Server) writeSeries(w http.ResponseWriter, r *http.Request, rn *run, src MetricsSource) {
	sq, err := parseSeriesQuery(r.URL.Query())
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	last, _ := src.Last()
	b := make([]byte, 0, 64<<10)
	b = append(b, `{"run":`...)
	b = strconv.AppendQuote(b, rn.name)
	b = append(b, `,"last_step":`...)
	b = strconv.AppendInt(b, last, 10)
	b = append(b, `,"points":`...)
	b = strconv.AppendInt(b, int64(sq.points), 10)
	if sf, ok := src.(*seriesFile); ok {
		if rec := sf.lastRecord(); rec != nil {
			// the newest record as written, for fields that are not numbers (timing's device, order)
			if raw, err := json.Marshal(rec); err == nil {
				b = append(b, `,"last":`...)
				b = append(b, raw...)
			}
		}
	}
	b = append(b, `,"series":{`...)
	first := true
	for _, name := range src.Names() {
		if sq.names != nil && !sq.names[name] {
			continue
		}
		steps, vals, total := src.Range(name, sq.from, sq.to, sq.points)
		if !first {
			b = append(b, ',')
		}
		first = false
		b = strconv.AppendQuote(b, name)
		b = append(b, `:{"total":`...)
		b = strconv.AppendInt(b, int64(total), 10)
		b = append(b, `,"steps":[`...)
		for i, st := range steps {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, st, 10)
		}
		b = append(b, `],"values":[`...)
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			switch {
			case math.IsNaN(v):
				b = append(b, `"NaN"`...)
			case math.IsInf(v, 1):
				b = append(b, `"Infinity"`...)
			case math.IsInf(v, -1):
				b = append(b, `"-Infinity"`...)
			default:
				b = strconv.AppendFloat(b, v, 'g', 7, 64)
			}
		}
		b = append(b, "]}"...)
	}
	b = append(b, "}}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// handleLedger is GET /api/ledger?run=&since=SEQ&limit=N: the ledger entries after seq, as
// written.
func (s *Server) handleLedger(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	q := r.URL.Query()
	since, err := intParam(q, "since", -1)
	if err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := intParam(q, "limit", maxLedgerOut)
	if err != nil || limit < 1 || limit > maxLedgerOut {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q: want 1 to %d", q.Get("limit"), maxLedgerOut))
		return
	}
	entries, cut := rn.ledger.since(since, int(limit))
	seq, n, failed := rn.ledger.summary()
	raws := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		raws[i] = e.raw
	}
	writeJSON(w, map[string]any{"run": rn.name, "last_seq": seq, "total": n, "failed": failed, "truncated": cut, "entries": raws})
}

// handleGallery is GET /api/gallery?run=: the feature-map pictures under the run directory.
func (s *Server) handleGallery(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	rn.mu.RLock()
	frames := append([]Frame{}, rn.frames...)
	rn.mu.RUnlock()
	writeJSON(w, map[string]any{"run": rn.name, "frames": frames})
}

// handleRecipe is GET /api/recipe?run=[&inline=1]: the recipe `hotcb recipe export` would write,
// from the ledger as it is now, as a download (nothing is written).
func (s *Server) handleRecipe(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	f, err := rn.root.OpenFile(rundir.Applied, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, "no applied ledger yet: the training process writes "+rundir.Applied+" as it applies commands")
		return
	}
	if err != nil {
		httpError(w, http.StatusForbidden, err.Error())
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		httpError(w, http.StatusForbidden, rundir.Applied+" is not a regular file")
		return
	}
	// As rundir.ReadJSONL reads it for `hotcb recipe export`: a line that does not parse (a
	// torn last line) is skipped.
	var entries []rundir.LedgerEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		var e rundir.LedgerEntry
		if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 && json.Unmarshal(l, &e) == nil {
			entries = append(entries, e)
		}
	}
	recipe, err := rundir.ExportRecipe(entries)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	b, err := rundir.EncodeRecipe(recipe)
	if err != nil {
		httpError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("inline") == "" {
		w.Header().Set("Content-Disposition", `attachment; filename="`+safeFileName(rn.name)+`.recipe.jsonl"`)
	}
	w.Write(b)
}

func safeFileName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// readBody checks that a write may happen — not read-only, the token, a JSON body within
// MaxBody — and returns the body; nil after answering an error.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) []byte {
	if s.cfg.ReadOnly {
		httpError(w, http.StatusForbidden, "this server is read-only (hotcb serve --read-only): no command is written")
		return nil
	}
	tok := r.Header.Get(TokenHeader)
	if tok == "" {
		httpError(w, http.StatusUnauthorized, "writes need the token hotcb serve printed at start, in the "+TokenHeader+" header (the page takes it from the #token= part of the address)")
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) != 1 {
		httpError(w, http.StatusForbidden, "wrong token: use the one hotcb serve printed at start")
		return nil
	}
	if o := r.Header.Get("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, r.Host) {
			httpError(w, http.StatusForbidden, fmt.Sprintf("origin %q is not this server", o))
			return nil
		}
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		httpError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: want application/json", ct))
		return nil
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is over %d bytes", MaxBody))
		} else {
			httpError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		}
		return nil
	}
	return body
}

// backendError answers an error of the backend: 400 for a RequestError, else 500.
func backendError(w http.ResponseWriter, err error) {
	var re *RequestError
	if errors.As(err, &re) {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	httpError(w, http.StatusInternalServerError, err.Error())
}

// handleCommands is POST /api/commands?run=: one op, the JSON of a hotcb.commands.jsonl line,
// checked with ops.Parse and appended by the CLI's code.
func (s *Server) handleCommands(w http.ResponseWriter, r *http.Request) {
	body := s.readBody(w, r)
	if body == nil {
		return
	}
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	op, err := ops.Parse(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, "not a valid op: "+err.Error())
		return
	}
	rn.refresh(time.Now(), true)
	seq, _, _ := rn.ledger.summary()
	line, err := s.cfg.Backend.AppendOp(rn.dir, op)
	if err != nil {
		backendError(w, err)
		return
	}
	writeJSON(w, map[string]any{"run": rn.name, "queued": true, "line": string(line), "ledger_seq": seq})
}

// cliRequest is the body of POST /api/cli.
type cliRequest struct {
	Args []string `json:"args"`
}

// handleCLI is POST /api/cli?run=: {"args": ["cb", "disable", "timing"]} runs that hotcb command
// on the run, as `hotcb --dir RUN cb disable timing` would.
func (s *Server) handleCLI(w http.ResponseWriter, r *http.Request) {
	body := s.readBody(w, r)
	if body == nil {
		return
	}
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	var req cliRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		httpError(w, http.StatusBadRequest, `want {"args": ["cb", "disable", "ID"]}: `+err.Error())
		return
	}
	if len(req.Args) == 0 || len(req.Args) > maxArgs {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("args: want 1 to %d arguments, got %d", maxArgs, len(req.Args)))
		return
	}
	for _, a := range req.Args {
		if strings.ContainsAny(a, "\x00\n\r") {
			httpError(w, http.StatusBadRequest, fmt.Sprintf("argument %q holds a NUL or a line break", a))
			return
		}
	}
	rn.refresh(time.Now(), true)
	seq, _, _ := rn.ledger.summary()
	res, err := s.cfg.Backend.Command(r.Context(), rn.dir, req.Args)
	if err != nil {
		backendError(w, err)
		return
	}
	if res.Lines == nil {
		res.Lines = []string{}
	}
	writeJSON(w, map[string]any{"run": rn.name, "output": res.Output, "notes": res.Notes, "lines": res.Lines,
		"ledger_seq": seq, "command": shellLine(rn.dir, req.Args)})
}

// shellLine is the hotcb command line the request stands for, quoted for a POSIX shell.
func shellLine(dir string, args []string) string {
	parts := []string{"hotcb", "--dir", shellQuote(dir)}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// fileTypes are the files of a run directory the server hands out, by extension.
var fileTypes = map[string]string{
	".png":   "image/png",
	".json":  "text/plain; charset=utf-8",
	".jsonl": "text/plain; charset=utf-8",
	".yaml":  "text/plain; charset=utf-8",
	".yml":   "text/plain; charset=utf-8",
	".log":   "text/plain; charset=utf-8",
	".txt":   "text/plain; charset=utf-8",
	".csv":   "text/plain; charset=utf-8",
	".npy":   "application/octet-stream",
}

// handleFile is GET /files/RUN/PATH: a file of the run directory — only a regular file inside
// it (opened through os.Root: no "..", no symbolic link out), of a type in fileTypes, served
// so that a browser never runs it.
func (s *Server) handleFile(w http.ResponseWriter, r *http.Request) {
	rn := s.run(w, r)
	if rn == nil {
		return
	}
	p := r.PathValue("path")
	if err := checkRelPath(p); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctype, ok := fileTypes[strings.ToLower(path.Ext(p))]
	if !ok {
		httpError(w, http.StatusForbidden, fmt.Sprintf("%s: only %s files are served", p, extList()))
		return
	}
	f, err := rn.root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		httpError(w, http.StatusNotFound, p+" does not exist in run "+rn.name)
		return
	}
	if err != nil {
		httpError(w, http.StatusForbidden, fmt.Sprintf("%s is not served: it leads out of the run directory or cannot be opened", p))
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		httpError(w, http.StatusForbidden, p+" is not a regular file")
		return
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src 'self'")
	h.Set("Cache-Control", "no-cache")
	if ctype == "application/octet-stream" {
		h.Set("Content-Disposition", `attachment; filename="`+safeFileName(path.Base(p))+`"`)
	}
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func extList() string {
	xs := make([]string, 0, len(fileTypes))
	for e := range fileTypes {
		xs = append(xs, e)
	}
	sort.Strings(xs)
	return strings.Join(xs, " ")
}

// checkRelPath accepts a clean relative path with slashes: no "..", no ".", no empty element,
// no backslash, no NUL, not absolute.
func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("no file named")
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("%q: a backslash or NUL in a path", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q: an absolute path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("%q: paths are relative to the run directory, without . or .. or empty parts", p)
		}
	}
	return nil
}
