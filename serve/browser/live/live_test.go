package live

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/serve"
	"github.com/hotcb/hotcb/trainer"
)

func chromium(t *testing.T) string {
	if p := os.Getenv("HOTCB_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Skip("no Chromium on PATH: install Debian's chromium (make deps does) or set HOTCB_CHROMIUM")
	return ""
}

func waitFor(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	if err := poll(ctx, expr, timeout); err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
		t.Fatalf("waiting for %s: %v\npage text:\n%s", what, err, body)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(t, err, expr)
	return v
}

type rect struct{ X, Y, W, H float64 }

func click(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	waitFor(t, ctx, sel, fmt.Sprintf(`!!document.querySelector(%q)`, sel), 20*time.Second)
	var b, last rect
	for try := 0; ; try++ { // the element must be what the pointer hits
		b = eval[rect](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%q); e.scrollIntoView({block: "center"}); const r = e.getBoundingClientRect(); const hit = document.elementFromPoint(r.x + r.width/2, r.y + r.height/2); return {X: r.x, Y: r.y, W: hit && e.contains(hit) ? r.width : -1, H: r.height}; })()`, sel))
		if b.W >= 0 && b == last || try == 50 { // hit, and in the same place twice in a row
			break
		}
		last = b
		time.Sleep(50 * time.Millisecond)
	}
	require.GreaterOrEqual(t, b.W, 0.0, "%s is covered", sel)
	require.NoError(t, chromedp.Do(ctx, chromedp.MouseClickXY(b.X+b.W/2, b.Y+b.H/2)))
}

// TestPageOnHotcbTrain: `hotcb train`'s run (timing and feature maps on, from the default
// hotcb.yaml) served and opened; the page lists the kernel's callbacks, draws its timing and
// system records and its feature maps, and a click on disable for feat_viz is applied by the
// kernel, which the page shows from the ledger.
func TestPageOnHotcbTrain(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a model")
	}
	path := chromium(t)
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, rundir.Dir(dir).Ensure())
	require.NoError(t, rundir.Dir(dir).WriteConfigIfAbsent(trainer.DefaultConfig+`  sys:
    enabled: true
    target: {kind: module, path: github.com/hotcb/hotcb/callbacks/system, symbol: SystemStats}
    init: {every: 20, log: false}
`))
	tctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := trainer.Run(tctx, trainer.Options{Dir: dir, Epochs: 1000, TrainN: 2000, TestN: 200, Batch: 32, Out: io.Discard, Progress: -1})
		done <- err
	}()
	defer func() {
		stop()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("the training did not stop")
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv, err := serve.New(serve.Config{RunDir: dir, Backend: cli.ServeBackend(), Hosts: serve.LoopbackHosts(ln.Addr()), Poll: 100 * time.Millisecond})
	require.NoError(t, err)
	sctx, cancelServe := context.WithCancel(context.Background())
	defer cancelServe()
	go srv.Serve(sctx, ln)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1400, 1000), chromedp.Flag("disable-gpu", true))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+ln.Addr().String()+"/#token="+srv.Token())); err != nil {
		t.Skipf("Chromium (%s) did not start: %v", path, err)
	}

	click(t, ctx, `#tabs button[data-tab="callbacks"]`)
	waitFor(t, ctx, "the kernel's callbacks in the table", `!!document.querySelector('tr[data-cb="timing"]') && !!document.querySelector('button[data-action="disable"][data-id="feat_viz"]:not([disabled])')`, 90*time.Second)
	waitFor(t, ctx, "a step and a device in the overview", `document.querySelector('.card[data-k="step"] .v').textContent !== '–' && document.querySelector('.card[data-k="device"] .v').textContent === 'cpu'`, 90*time.Second)

	click(t, ctx, `#tabs button[data-tab="timing"]`)
	waitFor(t, ctx, "the timing and system charts", `Number(document.querySelector('.chart[data-chart="t-step"]')?.dataset.points) > 0 && Number(document.querySelector('.chart[data-chart="s-mem"]')?.dataset.points) > 0`, 90*time.Second)
	click(t, ctx, `#tabs button[data-tab="gallery"]`)
	waitFor(t, ctx, "feature maps", `[...document.querySelectorAll('#gallery img')].some(i => i.complete && i.naturalWidth > 0)`, 60*time.Second)

	click(t, ctx, `#tabs button[data-tab="callbacks"]`)
	click(t, ctx, `button[data-action="disable"][data-id="feat_viz"]`)
	waitFor(t, ctx, "the kernel's ledger answer", `!!document.querySelector('#pending tr[data-state="applied"]')`, 60*time.Second)
	require.Regexp(t, `applied at step \d+ \(ledger seq \d+\)`, eval[string](t, ctx, `document.querySelector('#pending tr[data-state="applied"]').innerText`))
	waitFor(t, ctx, "feat_viz disabled in the status", `!!document.querySelector('button[data-action="enable"][data-id="feat_viz"]')`, 30*time.Second)

	// The metrics stream (hotcb.metrics.jsonl), when the trainer writes one.
	if _, err := os.Stat(filepath.Join(dir, serve.MetricsFile)); err == nil {
		click(t, ctx, `#tabs button[data-tab="metrics"]`)
		waitFor(t, ctx, "a metric chart", `[...document.querySelectorAll('#metric-charts .chart')].some(c => Number(c.dataset.points) > 0)`, 30*time.Second)
	} else {
		t.Logf("no %s from this trainer: the metric charts are not checked", serve.MetricsFile)
	}
}

// poll waits until expr is true in the page. A poll that starts as the page replaces its
// document can find the old one's execution context gone; it is tried again.
func poll(ctx context.Context, expr string, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(end)), chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil || !strings.Contains(err.Error(), "Cannot find context") || time.Now().After(end) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
