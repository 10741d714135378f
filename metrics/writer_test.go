package metrics

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// slow never flushes by itself: lines reach the file at Flush or Close.
var slow = Options{FlushInterval: time.Hour, FlushLines: 1 << 30}

func open(t *testing.T, path string, o Options) *Writer {
	t.Helper()
	w, err := Open(path, o)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return w
}

func entry(step int64, kv ...any) *Entry {
	e := &Entry{}
	e.Reset(step)
	e.WallTime = 1712345678.1234567
	for i := 0; i < len(kv); i += 2 {
		e.Set(kv[i].(string), kv[i+1].(float64))
	}
	return e
}

func content(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// The line is byte for byte what hotcb's MetricsCollector writes for the same record:
//
//	python3 -c 'import json; print(json.dumps({"step": 12, "epoch": 1, "wall_time": 1712345678.1234567,
//	  "metrics": {"loss": 0.25, "lr": 1e-05, "grad_norm": 1.7, "steps_per_s": 41.5,
//	  "time/forward_ms": 0.123, "big": 1e16, "ünï \"q\"\n": 3.0}}, ensure_ascii=False))'
func TestLineIsHotcbs(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, slow)
	e := entry(12, "loss", 0.25, "lr", 1e-05, "grad_norm", 1.7, "steps_per_s", 41.5, "time/forward_ms", 0.123,
		"big", 1e16, "ünï \"q\"\n", 3.0)
	e.Epoch = 1.75 // hotcb writes the epoch as an integer
	require.True(t, w.Write(e))
	require.NoError(t, w.Close())
	require.Equal(t, `{"step": 12, "epoch": 1, "wall_time": 1712345678.1234567, "metrics": {"loss": 0.25, "lr": 1e-05, "grad_norm": 1.7, "steps_per_s": 41.5, "time/forward_ms": 0.123, "big": 1e+16, "ünï \"q\"\n": 3.0}}`+"\n",
		content(t, path))
}

func TestNonFiniteAndEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, slow)
	w.Write(entry(0, "loss", math.NaN(), "x", math.Inf(-1)))
	w.Write(entry(1))
	require.NoError(t, w.Close())
	require.Equal(t, `{"step": 0, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {"loss": "NaN", "x": "-Infinity"}}`+"\n"+
		`{"step": 1, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {}}`+"\n", content(t, path))
	recs, err := Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	require.True(t, math.IsNaN(recs[0].Metrics["loss"]))
	require.True(t, math.IsInf(recs[0].Metrics["x"], -1))
}

func TestEntrySetReplaces(t *testing.T) {
	e := entry(3, "a", 1.0, "b", 2.0)
	e.Set("a", 5)
	require.Equal(t, 2, e.Len())
	v, ok := e.Get("a")
	require.True(t, ok)
	require.Equal(t, 5.0, v)
	_, ok = e.Get("c")
	require.False(t, ok)
	var c Entry
	c.CopyFrom(e)
	e.Set("a", 6)
	v, _ = c.Get("a")
	require.Equal(t, 5.0, v)
}

func TestBatchedFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, Options{FlushInterval: time.Hour, FlushLines: 3})
	w.Write(entry(0, "loss", 1.0))
	w.Write(entry(1, "loss", 1.0))
	time.Sleep(20 * time.Millisecond)
	require.Empty(t, content(t, path), "two lines wait for the third (or the interval)")
	w.Write(entry(2, "loss", 1.0))
	require.Eventually(t, func() bool { return strings.Count(content(t, path), "\n") == 3 },
		5*time.Second, 5*time.Millisecond, "the third line wakes the writing goroutine")
	w.Write(entry(3, "loss", 1.0))
	require.NoError(t, w.Close())
	require.Equal(t, 4, strings.Count(content(t, path), "\n"), "Close flushes")
	require.False(t, w.Write(entry(4, "loss", 1.0)), "a closed writer writes nothing")

	path2 := filepath.Join(t.TempDir(), File)
	w2 := open(t, path2, Options{FlushInterval: 10 * time.Millisecond})
	w2.Write(entry(0, "loss", 1.0))
	require.Eventually(t, func() bool { return strings.Count(content(t, path2), "\n") == 1 },
		5*time.Second, 5*time.Millisecond, "the interval flushes")
}

func TestDueRule(t *testing.T) {
	const full = 8
	count := func(lo, hi int64) (n int) {
		for s := lo; s < hi; s++ {
			if Due(s, full) {
				n++
			}
		}
		return n
	}
	require.Equal(t, full, count(0, full), "all of the first Full steps")
	for j := int64(1); j < 6; j++ {
		lo, hi := full*(int64(1)<<j-1), full*(int64(1)<<(j+1)-1)
		require.Equal(t, full, count(lo, hi), "band %d: Full lines", j)
		for s := lo; s < hi; s++ {
			require.Equal(t, s%(int64(1)<<j) == 0, Due(s, full), "step %d", s)
		}
	}
	require.True(t, Due(12345, -1))
	require.False(t, Due(full+1, full))
	// 10 million steps at the default Full: about 100 000 lines.
	n := 0
	for s := int64(0); s < 10_000_000; s++ {
		if Due(s, DefaultFull) {
			n++
		}
	}
	require.InDelta(t, 100_000, n, 5_000)
}

func TestDecimationCarriesSparseValues(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, Options{Full: 4, FlushInterval: time.Hour, FlushLines: 1 << 30})
	for s := int64(0); s < 16; s++ {
		e := entry(s, "loss", float64(s))
		if s%5 == 3 { // 3, 8, 13: reported now and then
			e.Set("gn", float64(100+s))
		}
		if s == 9 {
			e.Set("val_acc", 0.5)
			e.Keep = true
		}
		w.Write(e)
	}
	require.NoError(t, w.Close())
	lines := strings.Split(strings.TrimSuffix(content(t, path), "\n"), "\n")
	const h = `"epoch": 0, "wall_time": 1712345678.1234567, `
	require.Equal(t, []string{
		`{"step": 0, ` + h + `"metrics": {"loss": 0.0}}`,
		`{"step": 1, ` + h + `"metrics": {"loss": 1.0}}`,
		`{"step": 2, ` + h + `"metrics": {"loss": 2.0}}`,
		`{"step": 3, ` + h + `"metrics": {"loss": 3.0, "gn": 103.0}}`,
		// steps 4 to 11: every 2nd
		`{"step": 4, ` + h + `"metrics": {"loss": 4.0}}`,
		`{"step": 6, ` + h + `"metrics": {"loss": 6.0}}`,
		`{"step": 8, ` + h + `"metrics": {"loss": 8.0, "gn": 108.0}}`,
		`{"step": 9, ` + h + `"metrics": {"loss": 9.0, "val_acc": 0.5}}`, // Keep
		`{"step": 10, ` + h + `"metrics": {"loss": 10.0}}`,
		// steps 12 to 27: every 4th; 13's gn goes into 16's line, which Close writes at 15
		`{"step": 12, ` + h + `"metrics": {"loss": 12.0}}`,
		`{"step": 15, ` + h + `"metrics": {"loss": 15.0, "gn": 113.0}, "metrics_at": {"loss": 15, "gn": 13}}`,
	}, lines)
	st := w.Stats()
	require.Equal(t, int64(11), st.Lines)
	require.Equal(t, int64(6), st.Decimated)

	recs, err := Read(path, -1)
	require.NoError(t, err)
	gn := Series(recs, "gn", 0)
	require.Equal(t, []int64{3, 8, 13}, []int64{gn[0].Step, gn[1].Step, gn[2].Step}, "at the steps reported")
}

func TestTornLineAndRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, slow)
	for s := int64(0); s < 6; s++ {
		w.Write(entry(s, "loss", float64(s)))
	}
	require.NoError(t, w.Close())
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"step": 6, "epoch": 0, "wall_ti`) // killed mid-line
	require.NoError(t, err)
	require.NoError(t, f.Close())
	before := content(t, path)

	recs, err := Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, 6, "the torn line is skipped")

	// Resumed from a checkpoint at step 3.
	w = open(t, path, slow)
	require.Equal(t, before+"\n", content(t, path), "the torn line is ended at once, nothing removed")
	w.Write(entry(3, "loss", 30.0))
	w.Write(entry(4, "loss", 40.0))
	require.NoError(t, w.Close())
	after := strings.TrimPrefix(content(t, path), before+"\n")
	require.Equal(t, `{"step": 3, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {}, "restart": {"previous_last_step": 5}}`+"\n"+
		`{"step": 3, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {"loss": 30.0}}`+"\n"+
		`{"step": 4, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {"loss": 40.0}}`+"\n", after)

	recs, err = Read(path, -1)
	require.NoError(t, err)
	var steps []int64
	for _, r := range recs {
		steps = append(steps, r.Step)
	}
	require.Equal(t, []int64{0, 1, 2, 3, 3, 4}, steps, "steps 3 to 5 of the killed process are superseded")
	require.NotNil(t, recs[3].Restart)
	require.Equal(t, int64(5), recs[3].Restart.PreviousLastStep)
	loss := Series(recs, "loss", 0)
	require.Len(t, loss, 5)
	require.Equal(t, 30.0, loss[3].Value)

	since, err := Read(path, 3)
	require.NoError(t, err)
	require.Len(t, since, 1)
	require.Equal(t, int64(4), since[0].Step)
}

func TestRestartWithoutAnyValidLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	require.NoError(t, os.WriteFile(path, []byte("garbage\n{\"ste"), 0o600))
	w := open(t, path, slow)
	w.Write(entry(0, "loss", 1.0))
	require.NoError(t, w.Close())
	require.Equal(t, "garbage\n{\"ste\n"+
		`{"step": 0, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {}, "restart": {}}`+"\n"+
		`{"step": 0, "epoch": 0, "wall_time": 1712345678.1234567, "metrics": {"loss": 1.0}}`+"\n", content(t, path))
}

func TestLastLineFarBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	var b strings.Builder
	b.WriteString(`{"step": 41, "epoch": 0, "wall_time": 1.0, "metrics": {}}` + "\n")
	// A long line that does not parse, spanning several chunks, then a torn one.
	b.WriteString(`{"step": "x", "pad": "` + strings.Repeat("z", 3*tailChunk) + `"}` + "\n")
	b.WriteString(`{"st`)
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	w := open(t, path, slow)
	require.Equal(t, int64(41), w.previous)
	require.NoError(t, w.Close())
}

func TestBufferFullDropsAndCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	var logs []string
	var mu sync.Mutex
	o := slow
	o.MaxBuffer = 200
	o.Log = func(s string) { mu.Lock(); logs = append(logs, s); mu.Unlock() }
	w := open(t, path, o)
	for s := int64(0); s < 10; s++ {
		w.Write(entry(s, "loss", 1.0))
	}
	st := w.Stats()
	require.Equal(t, int64(2), st.Lines, "two lines of ~85 bytes fit in 200")
	require.Equal(t, int64(8), st.Dropped)
	require.NoError(t, w.Flush())
	require.True(t, w.Write(entry(10, "loss", 1.0)), "room again after the flush")
	mu.Lock()
	require.Len(t, logs, 2, "the first drop is logged, not every one; then the recovery")
	require.Contains(t, logs[0], "buffer is full")
	require.Contains(t, logs[1], "works again (8 lines lost)")
	mu.Unlock()
}

func TestWriteErrorIsCountedNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	var logs []string
	o := slow
	o.Log = func(s string) { logs = append(logs, s) }
	w := open(t, path, o)
	w.Write(entry(0, "loss", 1.0))
	w.Write(entry(1, "loss", 1.0))
	w.f.Close() // the file can no longer be written
	require.Error(t, w.Flush())
	st := w.Stats()
	require.Equal(t, int64(2), st.Dropped)
	require.NotEmpty(t, st.Err)
	require.Len(t, logs, 1)
	require.Contains(t, logs[0], "2 lines lost")
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	require.NoError(t, os.WriteFile(target, nil, 0o600))
	require.NoError(t, os.Symlink(target, filepath.Join(dir, File)))
	_, err := Open(filepath.Join(dir, File), slow)
	require.ErrorContains(t, err, "symbolic link")
	_, err = Read(filepath.Join(dir, File), -1)
	require.ErrorContains(t, err, "symbolic link")
}

// Writes on the training goroutine and flushes on the writer's goroutine (and Stats from a
// third) share the buffer: run with -race.
func TestConcurrentWriteAndFlush(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, Options{FlushInterval: time.Millisecond, FlushLines: 7})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				w.Flush()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = w.Stats()
			}
		}
	}()
	const n = 3000
	for s := int64(0); s < n; s++ {
		w.Write(entry(s, "loss", float64(s), "lr", 0.1))
	}
	close(stop)
	wg.Wait()
	require.NoError(t, w.Close())
	recs, err := Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, n)
	for i, r := range recs {
		require.Equal(t, int64(i), r.Step, "lines in order, none cut")
	}
}

func TestWriteAllocatesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), File)
	w := open(t, path, Options{FlushInterval: time.Hour, FlushLines: 1 << 30, Full: 100})
	e := entry(0, "loss", 0.5, "lr", 1e-3, "grad_norm", 1.5, "steps_per_s", 40.0)
	step := int64(0)
	write := func() {
		e.Step = step
		e.Set("loss", float64(step))
		w.Write(e)
		step++
		if step%64 == 0 {
			w.Flush()
		}
	}
	for range 1000 { // grow the buffers
		write()
	}
	require.Zero(t, testing.AllocsPerRun(1000, write))
}
