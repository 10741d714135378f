package serve_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/serve"
)

// costRun is a run directory whose metrics file holds points metric points (4 metrics a line),
// served by a server that has read it, as a user's `hotcb serve` has by the time training goes on.
type costRun struct {
	dir  string
	ts   *httptest.Server
	srv  *serve.Server
	file *os.File
	step int
}

func newCostRun(tb testing.TB, points int) *costRun {
	tb.Helper()
	dir := tb.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, serve.MetricsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	c := &costRun{dir: dir, file: f}
	for c.step = 1; c.step <= points/4; c.step++ {
		w.WriteString(metricsLine(c.step))
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	srv, err := serve.New(serve.Config{RunDir: dir, Backend: cli.ServeBackend(), ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	c.srv, c.ts = srv, httptest.NewServer(srv.Handler())
	tb.Cleanup(func() { c.ts.Close(); srv.Close(); f.Close() })
	res, err := http.Get(c.ts.URL + "/api/metrics") // read the file now
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return c
}

func metricsLine(step int) string {
	return `{"step":` + strconv.Itoa(step) + `,"epoch":1.5,"metrics":{"loss":` + strconv.FormatFloat(2/float64(step+1), 'g', 6, 64) +
		`,"lr":0.1,"acc":0.5,"grad_norm":1.25},"wall_time":1700000000.5}` + "\n"
}

// browsers plays n pages: each keeps the event stream open and, on each hint, asks for
// /api/metrics since its last step (and the ledger), and every second for the overview and
// the status, as app.js does. stop ends them.
func (c *costRun) browsers(n int) (stop func(), requests *int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var count int64
	get := func(path string) []byte {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.ts.URL+path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		mu.Lock()
		count++
		mu.Unlock()
		return b
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m struct {
				LastStep int64 `json:"last_step"`
			}
			json.Unmarshal(get("/api/metrics"), &m)
			req, _ := http.NewRequestWithContext(ctx, "GET", c.ts.URL+"/api/events", nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer res.Body.Close()
			lines := make(chan string, 64)
			go func() {
				sc := bufio.NewScanner(res.Body)
				for sc.Scan() {
					select {
					case lines <- sc.Text():
					default:
					}
				}
				close(lines)
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					get("/api/overview")
					get("/api/status")
				case l, ok := <-lines:
					if !ok {
						return
					}
					if strings.Contains(l, `"kind":"metrics"`) {
						json.Unmarshal(get("/api/metrics?since="+strconv.FormatInt(m.LastStep, 10)), &m)
						get("/api/ledger?since=-1")
					}
				}
			}
		}()
	}
	return func() { cancel(); wg.Wait() }, &count
}

// sink keeps the compiler from dropping the work.
var sink float64

// train runs steps training-like steps: about a millisecond of arithmetic (a 96 × 96 matrix
// product) and one metrics line appended, as a training process writes it.
func (c *costRun) train(steps int) time.Duration {
	const n = 96
	a, b2, out := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	for i := range a {
		a[i], b2[i] = float64(i%7)/7, float64(i%5)/5
	}
	t0 := time.Now()
	for s := 0; s < steps; s++ {
		for i := 0; i < n; i++ {
			for k := 0; k < n; k++ {
				x := a[i*n+k]
				for j := 0; j < n; j++ {
					out[i*n+j] += x * b2[k*n+j]
				}
			}
		}
		sink += out[s%len(out)]
		c.step++
		if _, err := c.file.WriteString(metricsLine(c.step)); err != nil {
			panic(err)
		}
	}
	return time.Since(t0)
}

// BenchmarkTrainingLoop is a step of a training-like loop on a run of 1M metric points, with no
// browser and with 5 browsers following it live.
func BenchmarkTrainingLoop(b *testing.B) {
	c := newCostRun(b, 1_000_000)
	for _, clients := range []int{0, 5} {
		b.Run(fmt.Sprintf("browsers=%d", clients), func(b *testing.B) {
			stop, reqs := c.browsers(clients)
			defer stop()
			time.Sleep(300 * time.Millisecond)
			b.ResetTimer()
			d := c.train(b.N)
			b.ReportMetric(float64(b.N)/d.Seconds(), "steps/s")
			b.ReportMetric(float64(*reqs)/d.Seconds(), "requests/s")
		})
	}
}

// TestServeCost alternates rounds without and with 5 browsers on a run of 1M metric points and
// compares the median step time (HOTCB_SERVE_COST=1; on a busy machine rounds vary by several
// per cent, so it reports and checks only a gross slowdown).
func TestServeCost(t *testing.T) {
	if os.Getenv("HOTCB_SERVE_COST") == "" {
		t.Skip("HOTCB_SERVE_COST=1 measures the training slowdown with 5 browsers (about a minute)")
	}
	c := newCostRun(t, 1_000_000)
	const steps, rounds = 600, 15
	var without, with []float64
	var reqs int64
	for r := 0; r < rounds; r++ {
		without = append(without, float64(c.train(steps).Microseconds())/steps)
		stop, n := c.browsers(5)
		time.Sleep(300 * time.Millisecond)
		with = append(with, float64(c.train(steps).Microseconds())/steps)
		stop()
		reqs += *n
	}
	slices.Sort(without)
	slices.Sort(with)
	m0, m5 := without[rounds/2], with[rounds/2]
	t.Logf("step time, median of %d rounds of %d steps: %.1f µs without a browser, %.1f µs with 5 (%+.1f%%); rounds without: %v; with: %v; %d requests served",
		rounds, steps, m0, m5, 100*(m5/m0-1), without, with, reqs)
	if m5 > 1.25*m0 {
		t.Errorf("5 browsers slow the loop by %.0f%%", 100*(m5/m0-1))
	}

	// What serving costs, in CPU time, whatever the machine's load: this process's CPU time
	// over 5 s while a writer appends 400 steps/s, without and with the 5 browsers (whose own
	// work is in this process too, so this is an upper bound of the server's).
	cpu := func(clients int) time.Duration {
		stop, _ := c.browsers(clients)
		defer stop()
		time.Sleep(300 * time.Millisecond)
		t0 := cpuTime()
		end := time.Now().Add(5 * time.Second)
		for tk := time.NewTicker(2500 * time.Microsecond); time.Now().Before(end); <-tk.C {
			c.step++
			c.file.WriteString(metricsLine(c.step))
		}
		return (cpuTime() - t0) / 5
	}
	c0, c5 := cpu(0), cpu(5)
	t.Logf("CPU time per second of training at 400 steps/s: %v with no browser, %v with 5 (the server and the 5 pretend browsers: %.1f%% of one core)",
		c0.Round(time.Microsecond), c5.Round(time.Microsecond), 100*(c5-c0).Seconds())
	if c5-c0 > 100*time.Millisecond {
		t.Errorf("serving 5 browsers takes %v of CPU a second", c5-c0)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMetricsAPI is GET /api/metrics on a run of 4 metrics × 100k points (decimated to 2000
// points per metric), the request a page makes when it opens.
func BenchmarkMetricsAPI(b *testing.B) {
	c := newCostRun(b, 400_000)
	b.ResetTimer()
	var size int
	for i := 0; i < b.N; i++ {
		res, err := http.Get(c.ts.URL + "/api/metrics")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		size = len(body)
	}
	b.ReportMetric(float64(size)/1024, "KB")
}
