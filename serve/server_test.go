package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/serve"
	"github.com/hotcb/hotcb/serve/internal/fakerun"
)

const token = "t0k3n"

// fixture is a served run: the run directory, its pretend trainer and the server.
type fixture struct {
	dir string
	run *fakerun.Run
	ts  *httptest.Server
	srv *serve.Server
}

func newFixture(t *testing.T, steps int, cfg serve.Config) *fixture {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "exp1")
	run, err := fakerun.New(dir, 1)
	require.NoError(t, err)
	t.Cleanup(func() { run.Close() })
	run.FrameEvery = 1000
	require.NoError(t, run.Advance(steps))
	if cfg.RunsDir == "" {
		cfg.RunDir = dir
	}
	cfg.Backend = cli.ServeBackend()
	if cfg.Token == "" {
		cfg.Token = token
	}
	srv, err := serve.New(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return &fixture{dir: dir, run: run, ts: ts, srv: srv}
}

type resp struct {
	code int
	body []byte
	hdr  http.Header
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "%s", r.body)
	return m
}

func (r resp) errMsg(t *testing.T) string {
	t.Helper()
	m := r.json(t)
	msg, ok := m["error"].(string)
	require.True(t, ok, "an error message in %s", r.body)
	require.NotEmpty(t, msg)
	return msg
}

func (f *fixture) do(t *testing.T, method, path string, body string, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return resp{res.StatusCode, b, res.Header}
}

func (f *fixture) get(t *testing.T, path string) resp { return f.do(t, "GET", path, "", nil) }

func (f *fixture) post(t *testing.T, path, body string) resp {
	return f.do(t, "POST", path, body, map[string]string{"Content-Type": "application/json", serve.TokenHeader: token})
}

func cliRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	code := cli.Run(context.Background(), append([]string{"--dir", dir}, args...), &out, &errOut)
	require.Zero(t, code, errOut.String())
	return out.String()
}

func TestStatusIsTheCLIsJSON(t *testing.T) {
	f := newFixture(t, 500, serve.Config{})
	r := f.get(t, "/api/status")
	require.Equal(t, 200, r.code, "%s", r.body)
	// hotcb status --json, taken a moment apart: the same but for the age.
	want := map[string]any{}
	require.NoError(t, json.Unmarshal([]byte(cliRun(t, f.dir, "status", "--json")), &want))
	got := r.json(t)
	delete(want, "age_seconds")
	delete(got, "age_seconds")
	require.Equal(t, want, got)
	st := got["status"].(map[string]any)
	require.EqualValues(t, 500, st["step"])
	require.Len(t, st["callbacks"], 3)
}

func TestMetricsSinceAndDecimation(t *testing.T) {
	f := newFixture(t, 100_000, serve.Config{})
	t0 := time.Now()
	r := f.get(t, "/api/metrics")
	first := time.Since(t0)
	require.Equal(t, 200, r.code, "%s", r.body)
	m := r.json(t)
	require.EqualValues(t, 100_000, m["last_step"])
	series := m["series"].(map[string]any)
	require.ElementsMatch(t, []string{"loss", "lr", "acc", "grad_norm"}, keys(series))
	for name, s := range series {
		s := s.(map[string]any)
		require.EqualValues(t, 100_000, s["total"], name)
		steps := s["steps"].([]any)
		require.LessOrEqual(t, len(steps), serve.DefPoints, name)
		if name != "lr" { // a constant lr needs one point a bucket
			require.Greater(t, len(steps), serve.DefPoints-100, name)
		}
		require.EqualValues(t, 1, steps[0])
		require.EqualValues(t, 100_000, steps[len(steps)-1])
	}
	t0 = time.Now()
	r = f.get(t, "/api/metrics")
	t.Logf("/api/metrics, 4 series × 100k points: %v the first time (reads the file), %v after; %d KB", first, time.Since(t0), len(r.body)/1024)

	require.NoError(t, f.run.Advance(3))
	time.Sleep(150 * time.Millisecond) // a run's files are read at most every 100 ms
	r = f.get(t, "/api/metrics?since=100000")
	series = r.json(t)["series"].(map[string]any)
	loss := series["loss"].(map[string]any)
	require.Equal(t, []any{100001.0, 100002.0, 100003.0}, loss["steps"], "only what is after since")
	require.EqualValues(t, 3, loss["total"])

	r = f.get(t, "/api/metrics?from=500&to=520&names=loss,acc")
	series = r.json(t)["series"].(map[string]any)
	require.ElementsMatch(t, []string{"loss", "acc"}, keys(series))
	require.Len(t, series["loss"].(map[string]any)["steps"], 21, "a zoomed range is whole")

	r = f.get(t, "/api/metrics?points=100")
	for _, s := range r.json(t)["series"].(map[string]any) {
		require.LessOrEqual(t, len(s.(map[string]any)["steps"].([]any)), 100)
	}
	for _, bad := range []string{"since=x", "points=3", "points=100000", "from=10&to=5", "to=1e3"} {
		r := f.get(t, "/api/metrics?"+bad)
		require.Equal(t, 400, r.code, bad)
		require.NotEmpty(t, r.errMsg(t), bad)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestNaNValuesTravelAsStrings(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, serve.MetricsFile),
		[]byte(`{"step":1,"metrics":{"loss":1}}`+"\n"+`{"step":2,"metrics":{"loss":NaN}}`+"\n"), 0o600))
	srv, err := serve.New(serve.Config{RunDir: dir, Backend: cli.ServeBackend(), ReadOnly: true})
	require.NoError(t, err)
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	get := func(p string) map[string]any {
		res, err := http.Get(ts.URL + p)
		require.NoError(t, err)
		defer res.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
		return m
	}
	loss := get("/api/metrics")["series"].(map[string]any)["loss"].(map[string]any)
	require.Equal(t, []any{1.0, "NaN"}, loss["values"])
	ov := get("/api/overview")
	require.Equal(t, "NaN", ov["loss"].(map[string]any)["value"])
	h := ov["health"].(map[string]any)
	require.Equal(t, "error", h["state"])
	require.Contains(t, fmt.Sprint(h["problems"]), "loss is NaN at step 2")
}

func TestOverview(t *testing.T) {
	f := newFixture(t, 2000, serve.Config{})
	o := f.get(t, "/api/overview").json(t)
	require.EqualValues(t, 2000, o["step"])
	require.Equal(t, "loss", o["loss"].(map[string]any)["name"])
	require.EqualValues(t, 0.1, o["lr"].(map[string]any)["value"])
	require.Equal(t, "timing", o["steps_per_s_from"])
	require.Greater(t, o["steps_per_s"], 0.0)
	require.EqualValues(t, 200_000, o["total_steps"])
	require.Greater(t, o["eta_s"], 0.0)
	require.Equal(t, "off", o["freeze_mode"])
	require.Equal(t, "cpu", o["device"])
	require.Equal(t, "ok", o["health"].(map[string]any)["state"])
	require.EqualValues(t, 6, o["frames"], "2 frame steps × 3 layers")

	cliRun(t, f.dir, "freeze", "--mode", "prod")
	require.NoError(t, f.run.WriteStatus())
	time.Sleep(150 * time.Millisecond) // files are read at most every 100 ms
	o = f.get(t, "/api/overview").json(t)
	require.Equal(t, "prod", o["freeze_mode"])
}

func TestLedgerSince(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	r := f.get(t, "/api/ledger")
	require.Equal(t, 200, r.code)
	require.Empty(t, r.json(t)["entries"])
	cliRun(t, f.dir, "cb", "disable", "timing")
	cliRun(t, f.dir, "cb", "set_params", "nope", "every=3")
	_, err := f.run.Apply()
	require.NoError(t, err)
	// A torn last line (a writer mid-append) is left for later.
	ledger := filepath.Join(f.dir, rundir.Applied)
	fh, err := os.OpenFile(ledger, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	fh.WriteString(`{"seq": 2, "step": 10, "mod`)
	fh.Close()
	time.Sleep(150 * time.Millisecond)
	m := f.get(t, "/api/ledger?since=-1").json(t)
	es := m["entries"].([]any)
	require.Len(t, es, 2)
	require.Equal(t, "applied", es[0].(map[string]any)["decision"])
	require.Equal(t, "failed", es[1].(map[string]any)["decision"])
	require.Equal(t, "no callback nope", es[1].(map[string]any)["error"])
	require.EqualValues(t, 1, m["last_seq"])
	m = f.get(t, "/api/ledger?since=0").json(t)
	require.Len(t, m["entries"], 1, "since: only later seqs")
	require.Equal(t, 400, f.get(t, "/api/ledger?since=abc").code)
	require.Equal(t, 400, f.get(t, "/api/ledger?limit=0").code)
}

// POST /api/commands appends the line the CLI appends for the same op, byte for byte; bad ops
// are refused with a message and nothing is written.
func TestCommandsAppendTheCLIsBytes(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	other := t.TempDir()
	for _, c := range []struct {
		args []string
		op   string
	}{
		{[]string{"cb", "disable", "timing"}, `{"module":"cb","op":"disable","id":"timing"}`},
		{[]string{"cb", "set_params", "timing", "every=10", "name=run 1", "layers=[\"a\",\"b\"]", "scale=2.5"}, `{"module":"cb","op":"set_params","id":"timing","params":{"every":10,"name":"run 1","layers":["a","b"],"scale":2.5}}`},
		{[]string{"opt", "set_params", "lr=0.0003"}, `{"module":"opt","op":"set_params","id":"main","params":{"lr":0.0003}}`},
		{[]string{"cb", "load", "t2", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "TimingCallback", "--init", "every=5", "--no-enabled"},
			`{"module":"cb","op":"load","id":"t2","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":5},"enabled":false}`},
	} {
		cliRun(t, other, c.args...)
		r := f.post(t, "/api/commands", c.op)
		require.Equal(t, 200, r.code, "%s", r.body)
		require.Equal(t, true, r.json(t)["queued"])
	}
	want, err := os.ReadFile(filepath.Join(other, rundir.Commands))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(f.dir, rundir.Commands))
	require.NoError(t, err)
	require.Equal(t, string(want), string(got))

	for _, bad := range []struct{ body, want string }{
		{`{"op":"explode","id":"a"}`, `unknown cb op "explode"`},
		{`{"op":"enable"}`, `missing "id"`},
		{`{"op":"enable","id":"a"} {"op":"disable","id":"b"}`, "trailing data"},
		{`{"op":"load","id":"a","target":{"kind":"module","path":"p"}}`, "no symbol"},
		{`{"module":"opt","op":"set_params","params":{"lr":1e999}}`, "out of range"},
		{`[1]`, "not a JSON object"},
		{``, "empty line"},
		{"{\"op\":\"enable\",\"id\":\"a\n\"}", "invalid"},
	} {
		r := f.post(t, "/api/commands", bad.body)
		require.Equal(t, 400, r.code, bad.body)
		require.Contains(t, r.errMsg(t), bad.want, bad.body)
	}
	after, err := os.ReadFile(filepath.Join(f.dir, rundir.Commands))
	require.NoError(t, err)
	require.Equal(t, string(got), string(after), "refused ops write nothing")
}

// POST /api/cli runs the command the page's control stands for, and only such commands.
func TestCLIEndpoint(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	other := t.TempDir()
	cmds := [][]string{
		{"cb", "enable", "timing"},
		{"disable", "sys"},
		{"cb", "set", "fv", "every=100", "layers=[\"features.0\"]"},
		{"opt", "set_params", "--id", "main", "lr=3e-4"},
		{"set", "lr=5e-5"},
		{"loss", "set_params", "distill_w=0.2"},
		{"cb", "unload", "fv"},
	}
	for _, args := range cmds {
		cliRun(t, other, args...)
		body, _ := json.Marshal(map[string]any{"args": args})
		r := f.post(t, "/api/cli", string(body))
		require.Equal(t, 200, r.code, "%v: %s", args, r.body)
		m := r.json(t)
		require.Len(t, m["lines"], 1)
		require.Contains(t, m["output"], "queued")
		require.Contains(t, m["command"], "hotcb --dir "+f.dir+" "+args[0])
	}
	want, _ := os.ReadFile(filepath.Join(other, rundir.Commands))
	got, _ := os.ReadFile(filepath.Join(f.dir, rundir.Commands))
	require.Equal(t, string(want), string(got), "each control writes the CLI's line")

	r := f.post(t, "/api/cli", `{"args":["cb","disable","ghost"]}`)
	require.Equal(t, 200, r.code)
	require.Contains(t, r.json(t)["notes"], `no callback "ghost"`, "the CLI's note comes along")

	r = f.post(t, "/api/cli", `{"args":["freeze","--mode","prod"]}`)
	require.Equal(t, 200, r.code, "%s", r.body)
	fz, err := rundir.ReadFreeze(filepath.Join(f.dir, rundir.Freeze))
	require.NoError(t, err)
	require.Equal(t, "prod", fz.Mode)
	r = f.post(t, "/api/cli", `{"args":["freeze","--mode","replay"]}`)
	require.Equal(t, 400, r.code)
	require.Contains(t, r.errMsg(t), "hotcb.recipe.jsonl does not exist")

	r = f.post(t, "/api/cli", `{"args":["recipe","export"]}`)
	require.Equal(t, 400, r.code, "%s", r.body)
	require.Contains(t, r.errMsg(t), "no applied ledger", "a command that fails says why")
	_, err = f.run.Apply()
	require.NoError(t, err)
	r = f.post(t, "/api/cli", `{"args":["recipe","export"]}`)
	require.Equal(t, 200, r.code, "%s", r.body)
	require.FileExists(t, filepath.Join(f.dir, rundir.Recipe))

	before, _ := os.ReadFile(filepath.Join(f.dir, rundir.Commands))
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"train"}, "not a command the dashboard runs"},
		{[]string{"status"}, "not a command the dashboard runs"},
		{[]string{"init"}, "not a command the dashboard runs"},
		{[]string{"recipe", "patch-template", "--output", "/tmp/x"}, "not a command the dashboard runs"},
		{[]string{"recipe", "export", "--out", "/tmp/evil.jsonl"}, `does not pass "--out"`},
		{[]string{"recipe", "export", "-o", "/tmp/evil.jsonl"}, `does not pass "-o"`},
		{[]string{"cb", "disable", "x", "--dir", "/tmp"}, `does not pass "--dir"`},
		{[]string{"--dir", "/tmp", "cb", "disable", "x"}, `does not pass "--dir"`},
		{[]string{"freeze", "--mode", "replay", "--recipe", "/etc/passwd"}, `does not pass "--recipe"`},
		{[]string{"cb", "disable", "x", "--", "--help"}, `does not pass "--"`},
		{[]string{"cb", "set_params", "x", "novalue"}, "expected key=value"},
		{[]string{"nosuch"}, "not a command the dashboard runs"},
		{[]string{"cb", "explode", "x"}, "not a command the dashboard runs"},
		{[]string{"cb", "disable", "a\nb"}, "line break"},
	} {
		body, _ := json.Marshal(map[string]any{"args": bad.args})
		r := f.post(t, "/api/cli", string(body))
		require.Equal(t, 400, r.code, "%v: %s", bad.args, r.body)
		require.Contains(t, r.errMsg(t), bad.want, bad.args)
	}
	for _, bad := range []string{`{"args":[]}`, `{"args":"cb"}`, `{"argv":["cb"]}`, `nope`} {
		r := f.post(t, "/api/cli", bad)
		require.Equal(t, 400, r.code, bad)
		r.errMsg(t)
	}
	after, _ := os.ReadFile(filepath.Join(f.dir, rundir.Commands))
	require.Equal(t, string(before), string(after), "refused commands write nothing")
	require.NoFileExists(t, "/tmp/evil.jsonl")
}

func TestWritesNeedTheToken(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	op := `{"op":"disable","id":"timing"}`
	for _, c := range []struct {
		hdr  map[string]string
		code int
		want string
	}{
		{map[string]string{"Content-Type": "application/json"}, 401, "writes need the token"},
		{map[string]string{"Content-Type": "application/json", serve.TokenHeader: "wrong"}, 403, "wrong token"},
		{map[string]string{"Content-Type": "application/json", serve.TokenHeader: token + "x"}, 403, "wrong token"},
		{map[string]string{"Content-Type": "text/plain", serve.TokenHeader: token}, 415, "application/json"},
		{map[string]string{"Content-Type": "application/json", serve.TokenHeader: token, "Origin": "http://evil.example"}, 403, "origin"},
	} {
		r := f.do(t, "POST", "/api/commands", op, c.hdr)
		require.Equal(t, c.code, r.code, "%v %s", c.hdr, r.body)
		require.Contains(t, r.errMsg(t), c.want)
	}
	require.NoFileExists(t, filepath.Join(f.dir, rundir.Commands))
	r := f.do(t, "GET", "/api/commands", "", nil)
	require.Equal(t, 405, r.code, "GET is not a write")

	// Read-only: no token opens it.
	ro := newFixture(t, 10, serve.Config{ReadOnly: true})
	r = ro.post(t, "/api/commands", op)
	require.Equal(t, 403, r.code)
	require.Contains(t, r.errMsg(t), "read-only")
	r = ro.post(t, "/api/cli", `{"args":["cb","disable","timing"]}`)
	require.Equal(t, 403, r.code)
	require.Equal(t, true, ro.get(t, "/api/info").json(t)["read_only"])
	require.Empty(t, ro.srv.Token())
	require.NoFileExists(t, filepath.Join(ro.dir, rundir.Commands))
}

func TestBodiesAreBounded(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	big := `{"op":"set_params","id":"timing","params":{"x":"` + strings.Repeat("a", serve.MaxBody) + `"}}`
	r := f.post(t, "/api/commands", big)
	require.Equal(t, 413, r.code)
	require.Contains(t, r.errMsg(t), "over")
	require.NoFileExists(t, filepath.Join(f.dir, rundir.Commands))
	args := make([]string, 100)
	for i := range args {
		args[i] = "k=v"
	}
	body, _ := json.Marshal(map[string]any{"args": append([]string{"cb", "set_params", "x"}, args...)})
	r = f.post(t, "/api/cli", string(body))
	require.Equal(t, 400, r.code)
	require.Contains(t, r.errMsg(t), "arguments")
}

// A page of another site that resolves its own name to 127.0.0.1 (DNS rebinding) sends its own
// Host: refused.
func TestHostCheck(t *testing.T) {
	f := newFixture(t, 10, serve.Config{Hosts: []string{"127.0.0.1:8080", "localhost:8080"}})
	r := f.do(t, "GET", "/api/status", "", map[string]string{"Host": "evil.example:8080"})
	require.Equal(t, http.StatusMisdirectedRequest, r.code)
	require.Contains(t, r.errMsg(t), "DNS rebinding")
	req, _ := http.NewRequest("GET", f.ts.URL+"/api/info", nil)
	req.Host = "localhost:8080"
	res, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	hosts := serve.LoopbackHosts(ln.Addr())
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	require.Contains(t, hosts, "localhost:"+port)
	require.Contains(t, hosts, "127.0.0.1:"+port)
	require.Nil(t, serve.LoopbackHosts(&net.TCPAddr{IP: net.IPv4zero, Port: 80}), "0.0.0.0: no Host check possible")
}

// Files are served from inside the run directory only: no "..", encoded or not, no absolute
// path, no symbolic link out, only the listed types, and never as a page that runs script.
func TestFilesStayInsideTheRun(t *testing.T) {
	f := newFixture(t, 1000, serve.Config{})
	secret := filepath.Join(filepath.Dir(f.dir), "secret.txt")
	require.NoError(t, os.WriteFile(secret, []byte("SECRET"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "notes.txt"), []byte("ok"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(f.dir, "page.html"), []byte("<script>alert(1)</script>"), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(f.dir, "link.txt")))
	require.NoError(t, os.Symlink(filepath.Dir(f.dir), filepath.Join(f.dir, "up")))
	require.NoError(t, os.Symlink("notes.txt", filepath.Join(f.dir, "inner.txt")))
	require.NoError(t, os.Mkdir(filepath.Join(f.dir, "sub"), 0o700))

	r := f.get(t, "/files/exp1/featviz/step00001000_fc1.png")
	require.Equal(t, 200, r.code, "%s", r.body)
	require.Equal(t, "image/png", r.hdr.Get("Content-Type"))
	require.Contains(t, r.hdr.Get("Content-Security-Policy"), "sandbox")
	require.Equal(t, "nosniff", r.hdr.Get("X-Content-Type-Options"))
	r = f.get(t, "/files/exp1/notes.txt")
	require.Equal(t, "ok", string(r.body))
	r = f.get(t, "/files/exp1/inner.txt")
	require.Equal(t, "ok", string(r.body), "a link that stays inside is followed")

	for _, p := range []string{
		"/files/exp1/../secret.txt",
		"/files/exp1/%2e%2e/secret.txt",
		"/files/exp1/%2E%2E%2Fsecret.txt",
		"/files/exp1/sub/..%2F..%2Fsecret.txt",
		"/files/exp1/..%5csecret.txt",
		"/files/exp1/%2Fetc%2Fpasswd",
		"/files/exp1//etc/passwd",
		"/files/exp1/link.txt",
		"/files/exp1/up/secret.txt",
		"/files/exp1/page.html",
		"/files/exp1/hotcb.status.json%00.png",
		"/files/exp1/sub",
		"/files/exp1/sub.txt",
		"/files/nope/notes.txt",
		"/files/..%2F/secret.txt",
	} {
		r := f.get(t, p)
		require.GreaterOrEqual(t, r.code, 300, p)
		require.Less(t, r.code, 500, p)
		require.NotContains(t, string(r.body), "SECRET", p)
		require.NotContains(t, string(r.body), "<script>", p)
		require.NotContains(t, string(r.body), "root:", p)
	}
	// Raw requests: what a client that does not clean the path sends.
	for _, p := range []string{"/files/exp1/../secret.txt", "/files/exp1/../../../../etc/passwd", "/files/exp1/./../secret.txt"} {
		code, body := rawGet(t, f.ts.Listener.Addr().String(), p)
		require.NotEqual(t, 200, code, p)
		require.NotContains(t, body, "SECRET", p)
		require.NotContains(t, body, "root:", p)
	}
	// A status file linked from outside is not shown by /api/status.
	require.NoError(t, os.Rename(filepath.Join(f.dir, rundir.Status), filepath.Join(filepath.Dir(f.dir), "st.json")))
	require.NoError(t, os.Symlink(filepath.Join(filepath.Dir(f.dir), "st.json"), filepath.Join(f.dir, rundir.Status)))
	r = f.get(t, "/api/status")
	require.Equal(t, 403, r.code)
	require.Contains(t, r.errMsg(t), "symbolic link")
	// A metrics file linked from outside is not read either.
	outside := filepath.Join(filepath.Dir(f.dir), "m.jsonl")
	require.NoError(t, os.WriteFile(outside, []byte(`{"step":1,"metrics":{"stolen":1}}`+"\n"), 0o600))
	require.NoError(t, os.Remove(filepath.Join(f.dir, serve.MetricsFile)))
	require.NoError(t, os.Symlink(outside, filepath.Join(f.dir, serve.MetricsFile)))
	time.Sleep(150 * time.Millisecond)
	r = f.get(t, "/api/metrics")
	require.Equal(t, 200, r.code)
	require.NotContains(t, string(r.body), "stolen")
}

func rawGet(t *testing.T, addr, path string) (int, string) {
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestBadRequestsGetMessages(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	for _, c := range []struct {
		path string
		code int
	}{
		{"/api/nosuch", 404},
		{"/api/metrics?run=nope", 404},
		{"/api/series?kind=gpu", 400},
		{"/api/events?run=nope", 404},
	} {
		r := f.get(t, c.path)
		require.Equal(t, c.code, r.code, c.path)
		r.errMsg(t)
	}
}

func TestRecipeDownload(t *testing.T) {
	f := newFixture(t, 10, serve.Config{})
	r := f.get(t, "/api/recipe")
	require.Equal(t, 404, r.code)
	cliRun(t, f.dir, "opt", "set_params", "lr=0.05")
	cliRun(t, f.dir, "cb", "disable", "fv")
	_, err := f.run.Apply()
	require.NoError(t, err)
	r = f.get(t, "/api/recipe")
	require.Equal(t, 200, r.code, "%s", r.body)
	require.Contains(t, r.hdr.Get("Content-Disposition"), `filename="exp1.recipe.jsonl"`)
	cliRun(t, f.dir, "recipe", "export")
	want, err := os.ReadFile(filepath.Join(f.dir, rundir.Recipe))
	require.NoError(t, err)
	require.Equal(t, string(want), string(r.body), "the download is what hotcb recipe export writes")
	require.Equal(t, 2, strings.Count(string(r.body), "\n"))
}

func TestGalleryLists(t *testing.T) {
	f := newFixture(t, 2000, serve.Config{})
	m := f.get(t, "/api/gallery").json(t)
	frames := m["frames"].([]any)
	require.Len(t, frames, 6)
	fr := frames[0].(map[string]any)
	require.Equal(t, "featviz", fr["dir"])
	require.EqualValues(t, 1000, fr["step"])
	require.Equal(t, "fc1", fr["layer"])
	require.Equal(t, "featviz/step00001000_fc1.png", fr["path"])
}

// Several runs: each by name, listed with its overview.
func TestRunsDir(t *testing.T) {
	runs := t.TempDir()
	for i, name := range []string{"a", "b"} {
		r, err := fakerun.New(filepath.Join(runs, name), int64(i))
		require.NoError(t, err)
		require.NoError(t, r.Advance(100*(i+1)))
		r.Close()
	}
	require.NoError(t, os.Mkdir(filepath.Join(runs, "not-a-run"), 0o700))
	require.NoError(t, os.Symlink(filepath.Join(runs, "a"), filepath.Join(runs, "linked")))
	srv, err := serve.New(serve.Config{RunsDir: runs, Backend: cli.ServeBackend(), ReadOnly: true})
	require.NoError(t, err)
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	f := &fixture{ts: ts, srv: srv}
	m := f.get(t, "/api/runs").json(t)
	var names []string
	for _, o := range m["runs"].([]any) {
		names = append(names, o.(map[string]any)["run"].(string))
	}
	require.Equal(t, []string{"a", "b"}, names, "subdirectories with hotcb files; no link")
	require.EqualValues(t, 200, f.get(t, "/api/overview?run=b").json(t)["step"])
	r := f.get(t, "/api/overview")
	require.Equal(t, 400, r.code)
	require.Contains(t, r.errMsg(t), "which run?")

	r2, err := fakerun.New(filepath.Join(runs, "c"), 3)
	require.NoError(t, err)
	require.NoError(t, r2.Advance(5))
	r2.Close()
	time.Sleep(2100 * time.Millisecond) // the runs directory is listed again every 2 s
	require.EqualValues(t, 5, f.get(t, "/api/overview?run=c").json(t)["step"], "a new run appears")
}

// The event stream: a hello, then a hint when metrics and the ledger change.
func TestEvents(t *testing.T) {
	f := newFixture(t, 10, serve.Config{Poll: 20 * time.Millisecond})
	next := f.events(t, "exp1")
	next("hello")
	require.NoError(t, f.run.Advance(7))
	ev := next("metrics")
	if ev["step"] == 10.0 { // the server's first read of the run, if it ended after the stream began
		ev = next("metrics")
	}
	require.Equal(t, "exp1", ev["run"])
	require.EqualValues(t, 17, ev["step"])
	cliRun(t, f.dir, "cb", "disable", "sys")
	_, err := f.run.Apply()
	require.NoError(t, err)
	ev = next("ledger")
	require.EqualValues(t, 0, ev["seq"])
}

// A run directory written by Python hotcb: its json.dumps spacing, bare NaN, null ids, fields
// this version does not know, no status file.
func TestPythonRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "py")
	require.NoError(t, os.Mkdir(dir, 0o700))
	write := func(name, text string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600))
	}
	write(serve.MetricsFile, `{"step": 10, "epoch": 0, "metrics": {"loss": 2.31, "lr": 0.001}, "phase": "train"}
{"step": 20, "epoch": 0, "metrics": {"loss": 1.97, "lr": 0.001, "val/acc": 0.41}, "phase": "train"}
{"step": 30, "epoch": 0, "metrics": {"loss": NaN, "lr": 0.001}, "phase": "train"}
`)
	write(rundir.Applied, `{"seq": 0, "wall_time": 1733011200.5, "step": 12, "epoch": 0.0, "event": "train_step_end", "phase": "train", "module": "cb", "op": "enable", "id": "timing", "source": "external", "decision": "applied", "payload": {}, "error": null, "notes": null, "py_only": [1, 2]}
{"seq": 1, "wall_time": 1733011201.5, "step": 22, "epoch": 0.0, "event": "train_step_end", "phase": "train", "module": "opt", "op": "set_params", "id": "main", "source": "external", "decision": "applied", "payload": {"params": {"lr": 0.0005}}, "error": null, "notes": null}
{"seq": 2, "wall_time": 1733011202.5, "step": 25, "epoch": 0.0, "event": "train_step_end", "phase": "train", "module": "core", "op": "freeze", "id": null, "source": "external", "decision": "applied", "payload": {"mode": "prod"}, "error": null, "notes": null}
`)
	write(rundir.Commands, `{"module": "cb", "op": "enable", "id": "timing"}`+"\n")
	write(rundir.Freeze, `{"mode": "prod", "recipe_path": null, "adjust_path": null, "policy": "best_effort", "step_offset": 0}`)
	srv, err := serve.New(serve.Config{RunDir: dir, Backend: cli.ServeBackend(), Token: token})
	require.NoError(t, err)
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	f := &fixture{dir: dir, ts: ts, srv: srv}

	o := f.get(t, "/api/overview").json(t)
	require.EqualValues(t, 30, o["step"])
	require.Equal(t, "prod", o["freeze_mode"], "from hotcb.freeze.json when no status says")
	h := o["health"].(map[string]any)
	require.Equal(t, "error", h["state"], "a NaN loss")
	require.Contains(t, fmt.Sprint(h["problems"]), "no status yet")
	require.ElementsMatch(t, []any{"loss", "lr", "val/acc"}, o["metrics"])

	l := f.get(t, "/api/ledger").json(t)
	require.Len(t, l["entries"], 3)
	require.Equal(t, []any{1.0, 2.0}, l["entries"].([]any)[0].(map[string]any)["py_only"], "unknown fields pass through")

	r := f.get(t, "/api/status")
	require.Equal(t, 200, r.code)
	require.Nil(t, r.json(t)["status"])

	r = f.get(t, "/api/recipe?inline=1")
	require.Equal(t, 200, r.code)
	require.Equal(t, 2, strings.Count(string(r.body), "\n"), "cb enable and opt set_params; core freeze is not a recipe op")

	r = f.post(t, "/api/cli", `{"args":["cb","disable","timing"]}`)
	require.Equal(t, 200, r.code, "%s", r.body)
	b, err := os.ReadFile(filepath.Join(dir, rundir.Commands))
	require.NoError(t, err)
	require.Equal(t, `{"module": "cb", "op": "enable", "id": "timing"}`+"\n"+`{"module": "cb", "op": "disable", "id": "timing"}`+"\n", string(b))
}

// A change that a request's refresh reads first (every API call reads what is new) is announced
// all the same: the hub announces versions, not what its own poll found.
func TestEventsAfterARequestReadTheChange(t *testing.T) {
	f := newFixture(t, 10, serve.Config{Poll: 2 * time.Second})
	next := f.events(t, "exp1")
	next("hello")
	cliRun(t, f.dir, "cb", "disable", "sys")
	_, err := f.run.Apply()
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond) // past the files' minimum poll interval
	require.EqualValues(t, 0, f.get(t, "/api/overview").json(t)["ledger_seq"], "the request read the new entry")
	ev := next("ledger")
	require.EqualValues(t, 0, ev["seq"])
}

// events opens the event stream of run and returns a function that reads it up to the next
// event of a kind (the test fails when the stream ends first, or after 20 s).
func (f *fixture) events(t *testing.T, run string) (next func(kind string) map[string]any) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.ts.URL+"/api/events?run="+run, nil)
	res, err := f.ts.Client().Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	sc := bufio.NewScanner(res.Body)
	var seen []string
	return func(kind string) map[string]any {
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "data: ") {
				var ev map[string]any
				require.NoError(t, json.Unmarshal([]byte(l[6:]), &ev))
				seen = append(seen, fmt.Sprint(ev["kind"]))
				if ev["kind"] == kind {
					return ev
				}
			}
		}
		t.Fatalf("no %s event (saw %v): %v", kind, seen, sc.Err())
		return nil
	}
}
