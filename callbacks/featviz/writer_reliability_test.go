package featviz

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// A disk that is full, or an output directory that cannot be written, while FeatureViz captures
// every step. (A disk that hangs is TestFullQueueDropsWithoutBlocking.) Frames that cannot be
// written are counted as Failed and reported through env.Log; the queue stays within its
// limit, so memory does not grow; training goes on; once the disk is writable again, frames
// and the gallery are written again.
//
// Two ways to fail that work as root too, where chmod stops nothing:
//   - "dev-full": the writer's file writes go to /dev/full, which fails every write with ENOSPC
//     (the real errno of a full disk);
//   - "proc-symlink": the output directory is replaced by a symlink to /proc, where no file can
//     be created (ENOENT), by the real writeFileAtomic.
func TestDiskFullWhileCapturing(t *testing.T) {
	for _, method := range []string{"dev-full", "proc-symlink"} {
		t.Run(method, func(t *testing.T) {
			for _, p := range []string{"/dev/full", "/proc"} {
				if _, err := os.Stat(p); err != nil {
					t.Skip("needs " + p)
				}
			}
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
				// the bridge's background runtime.GC, started by libtorch allocations; it ends by itself
				goleak.IgnoreAnyFunction("github.com/hotcb/hotcb/bridge.notePressure.func1"))
			r := newRig(t, 2)
			var full atomic.Bool
			var pngFailed, otherFailed atomic.Int64
			write := func(p string, b []byte) error {
				var err error
				if method == "dev-full" && full.Load() {
					err = writeDevFull(b)
				} else {
					err = writeFileAtomic(p, b)
				}
				if err != nil && strings.HasSuffix(p, ".png") {
					pngFailed.Add(1)
				} else if err != nil {
					otherFailed.Add(1) // index.html
				}
				return err
			}
			const queue = 4
			f, err := newFeatureViz("fv", map[string]any{"every": 1, "queue": queue}, write)
			require.NoError(t, err)
			t.Cleanup(func() { f.Close() }) // also when a check fails (a second Close does nothing)
			require.NoError(t, f.OnAttach(r.env))
			dir := f.Dir()

			r.step(f)
			waitFor(t, func() bool { return f.Stats().Written == 3 })
			if method == "dev-full" {
				full.Store(true)
			} else {
				// Renamed away, not removed: the writer may be writing the gallery there right now,
				// and may even create the directory again before the symlink takes its place; then
				// move that one away too.
				for i := 0; ; i++ {
					require.NoError(t, os.Rename(dir, fmt.Sprintf("%s.before%d", dir, i)))
					err := os.Symlink("/proc", dir)
					if err == nil {
						break
					}
					require.ErrorIs(t, err, fs.ErrExist)
					require.Less(t, i, 100, "the writer keeps recreating %s", dir)
				}
			}
			const faulty = 20
			for range faulty {
				r.step(f)
				require.LessOrEqual(t, f.Stats().Queued, queue, "the queue never grows past its limit")
			}
			waitFor(t, func() bool { st := f.Stats(); return st.Written+pngFailed.Load() == st.Captured })
			st := f.Stats()
			require.Equal(t, int64(3*(faulty+1)), st.Captured+st.Dropped, "every capture queued or dropped")
			require.Equal(t, int64(3), st.Written, "nothing written while the disk is full")
			require.Greater(t, pngFailed.Load(), int64(0))
			require.Equal(t, pngFailed.Load()+otherFailed.Load(), st.Failed, "each failed write counted once")
			want := map[string]error{"dev-full": syscall.ENOSPC, "proc-symlink": syscall.ENOENT}[method]
			require.Contains(t, st.LastError, want.Error())
			r.step(f) // Handle reports what failed since the last report
			require.Contains(t, r.log(), "frame(s) not written")
			require.Contains(t, r.log(), want.Error())

			// The disk has room again.
			if method == "dev-full" {
				full.Store(false)
			} else {
				require.NoError(t, os.Remove(dir))
				require.NoError(t, os.Mkdir(dir, 0o700))
			}
			waitFor(t, func() bool { st := f.Stats(); return st.Written+pngFailed.Load() == st.Captured })
			before := f.Stats().Written
			for range 3 {
				r.step(f)
				waitFor(t, func() bool { st := f.Stats(); return st.Written+pngFailed.Load() == st.Captured })
			}
			require.NoError(t, f.Close())
			st = f.Stats()
			require.Equal(t, before+9, st.Written, "writing resumed")
			require.Zero(t, st.Queued)
			require.FileExists(t, filepath.Join(dir, "index.html"))
			t.Logf("%s: captured %d, written %d, failed %d (%d frames), dropped %d; last error: %s",
				method, st.Captured, st.Written, st.Failed, pngFailed.Load(), st.Dropped, st.LastError)
		})
	}
}

// writeDevFull writes b to /dev/full: the kernel answers ENOSPC, as for a full disk.
func writeDevFull(b []byte) error {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(time.Millisecond)
	}
}
