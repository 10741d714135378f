package controller_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

// A replayed go_file load (source_capture) loads the run's captured copy only: the record must
// carry the sha256, the file is <run>/hotcb.sources/<sha256>.go, its bytes must have that
// sha256, and those very bytes are built. Before, a record with an empty sha256 and a
// captured_path like ../../.. loaded whatever file it named, without any check.

type captureRun struct {
	t     *testing.T
	dir   string // the run directory
	c     *controller.HotController
	env   *torchenv.Env
	lines []string
}

func newCaptureRun(t *testing.T, dir string) *captureRun {
	r := &captureRun{t: t, dir: dir}
	require.NoError(t, os.MkdirAll(dir, 0o700))
	c, err := controller.New(controller.Options{PollEveryStep: true, RunDir: dir,
		SourcesDir: filepath.Join(dir, "hotcb.sources"), Log: func(string) {}})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	r.c = c
	r.env = &torchenv.Env{Log: func(s string) { r.lines = append(r.lines, s) }}
	return r
}

// submit applies one op and returns its result.
func (r *captureRun) submit(op ops.Op) controller.Result {
	require.NoError(r.t, r.c.Submit(op))
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	r.env.Step++
	res := r.c.LastResults()
	require.Len(r.t, res, 1)
	return res[0]
}

func replayOp(id, sha, captured string) ops.Op {
	return ops.Op{Op: "load", ID: id, Init: map[string]any{"every": 1},
		Target:        &ops.CallbackTarget{Kind: "go_file", Path: "/gone/feat.go", Symbol: "FeatureViz"},
		SourceCapture: &ops.SourceCapture{SHA256: sha, CapturedPath: captured}}
}

func shaOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestCapturedLoadsAreChecked(t *testing.T) {
	root := t.TempDir()
	r := newCaptureRun(t, filepath.Join(root, "run"))
	src := filepath.Join(root, "feat.go")
	require.NoError(t, os.WriteFile(src, []byte(feature("v1")), 0o600))
	res := r.submit(ops.Op{Op: "load", ID: "orig", Init: map[string]any{"every": 1},
		Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "FeatureViz"}})
	require.Equal(t, controller.Applied, res.Decision, "%v", res.Err)
	sha := res.Capture.SHA256
	captured := res.Capture.CapturedPath
	require.Equal(t, filepath.Join(r.dir, "hotcb.sources", sha+".go"), captured)

	// A file outside the sources, which a record must not make a replay load (before, one with
	// an empty sha256 did).
	outside := filepath.Join(root, "elsewhere")
	require.NoError(t, os.MkdirAll(outside, 0o700))
	evilSrc := []byte(feature("evil"))
	evil := filepath.Join(outside, "evil.go")
	require.NoError(t, os.WriteFile(evil, evilSrc, 0o600))
	relEvil, err := filepath.Rel(r.dir, evil)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(relEvil, "../"))

	for _, c := range []struct {
		name, sha, captured, want string
	}{
		{"empty sha", "", relEvil, `source_capture: sha256 "" is not 64 lowercase hex digits`},
		{"empty sha, no path", "", "", `source_capture: sha256 "" is not 64 lowercase hex digits`},
		{"upper-case sha", strings.ToUpper(sha), "", "is not 64 lowercase hex digits"},
		{"traversal", shaOf(evilSrc), relEvil, `source_capture: captured_path "` + relEvil + `" is not the capture of sha256 ` + shaOf(evilSrc)},
		{"traversal to the root", sha, "../../..", `source_capture: captured_path "../../.." is not the capture of sha256 ` + sha},
		{"another name in the sources", sha, "hotcb.sources/other.go", `captured_path "hotcb.sources/other.go" is not the capture of sha256`},
		{"absolute path elsewhere", shaOf(evilSrc), evil, `captured_path "` + evil + `" is not the capture`},
		{"no such capture", shaOf(evilSrc), "", "not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := r.submit(replayOp("bad", c.sha, c.captured))
			require.Equal(t, controller.Failed, res.Decision)
			require.ErrorContains(t, res.Err, c.want)
			require.NotContains(t, strings.Join(r.lines, "\n"), "evil ")
		})
	}

	// the good capture replays, by absolute path, by the run-relative path, or by sha alone
	for i, p := range []string{captured, filepath.Join("hotcb.sources", sha+".go"), ""} {
		id := "replay" + string(rune('a'+i))
		res := r.submit(replayOp(id, sha, p))
		require.Equal(t, controller.Applied, res.Decision, "%q: %v", p, res.Err)
		require.Equal(t, captured, res.Capture.CapturedPath)
	}
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	require.Contains(t, strings.Join(r.lines, "\n"), "v1 replayc step=")

	// bytes altered after the capture: refused, nothing built. (The replayed callbacks watch
	// their capture like any source and would reload it: unload them first.)
	for _, id := range []string{"orig", "replaya", "replayb", "replayc"} {
		require.Equal(t, controller.Applied, r.submit(ops.Op{Op: "unload", ID: id}).Decision)
	}
	require.NoError(t, os.WriteFile(captured, []byte(feature("altered")), 0o600))
	res = r.submit(replayOp("altered", sha, captured))
	require.Equal(t, controller.Failed, res.Decision)
	require.ErrorContains(t, res.Err, "source_capture: "+captured+" has sha256 "+shaOf([]byte(feature("altered")))+", the record says "+sha+"; the capture was altered")

	// the captures are checked like any source: a world-writable capture is refused
	require.NoError(t, os.WriteFile(captured, []byte(feature("v1")), 0o600))
	require.NoError(t, os.Chmod(captured, 0o666))
	res = r.submit(replayOp("loose", sha, ""))
	require.Equal(t, controller.Failed, res.Decision)
	require.ErrorContains(t, res.Err, "writable by group or others")
}

// TestCaptureFromAnotherRun: a recipe replayed in a new run directory names the first run's
// capture. It is checked, verified, copied into the new run's sources and built from there.
func TestCaptureFromAnotherRun(t *testing.T) {
	root := t.TempDir()
	r1 := newCaptureRun(t, filepath.Join(root, "run1"))
	src := filepath.Join(root, "feat.go")
	require.NoError(t, os.WriteFile(src, []byte(feature("v1")), 0o600))
	res := r1.submit(ops.Op{Op: "load", ID: "f", Init: map[string]any{"every": 1},
		Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "FeatureViz"}})
	require.Equal(t, controller.Applied, res.Decision, "%v", res.Err)
	sha, first := res.Capture.SHA256, res.Capture.CapturedPath

	r2 := newCaptureRun(t, filepath.Join(root, "run2"))
	res = r2.submit(replayOp("f", sha, "../run1/hotcb.sources/"+sha+".go"))
	require.Equal(t, controller.Failed, res.Decision, "no .. in a path to another run's capture")
	res = r2.submit(replayOp("f", sha, first))
	require.Equal(t, controller.Applied, res.Decision, "%v", res.Err)
	own := filepath.Join(r2.dir, "hotcb.sources", sha+".go")
	require.Equal(t, own, res.Capture.CapturedPath)
	b, err := os.ReadFile(own)
	require.NoError(t, err)
	require.Equal(t, feature("v1"), string(b))

	// altered in the first run before the second copies it: refused
	r3 := newCaptureRun(t, filepath.Join(root, "run3"))
	require.NoError(t, os.WriteFile(first, []byte(feature("altered")), 0o600))
	res = r3.submit(replayOp("f", sha, first))
	require.Equal(t, controller.Failed, res.Decision)
	require.ErrorContains(t, res.Err, "the capture was altered")
	require.NoFileExists(t, filepath.Join(r3.dir, "hotcb.sources", sha+".go"))
}

// TestReloadUsesTheCheckedRead: hot reload reads the changed source the way a load does. A
// source replaced by a symbolic link, or rewritten after its directory became writable by
// others, is not built; the failure is reported once and the running version stays.
func TestReloadUsesTheCheckedRead(t *testing.T) {
	root := t.TempDir()
	r := newCaptureRun(t, filepath.Join(root, "run"))
	dir := filepath.Join(root, "src")
	require.NoError(t, os.Mkdir(dir, 0o700))
	src := filepath.Join(dir, "feat.go")
	require.NoError(t, os.WriteFile(src, []byte(feature("v1")), 0o600))
	res := r.submit(ops.Op{Op: "load", ID: "f", Init: map[string]any{"every": 1},
		Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "FeatureViz"}})
	require.Equal(t, controller.Applied, res.Decision, "%v", res.Err)

	// replaced by a symbolic link to a new version
	other := filepath.Join(root, "v2.go")
	require.NoError(t, os.WriteFile(other, []byte(feature("v2link")), 0o600)) // sizes differ: mtimes may not
	require.NoError(t, os.Remove(src))
	require.NoError(t, os.Symlink(other, src))
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	res = r.c.LastResults()[0]
	require.Equal(t, ops.OpLoad, res.Op.Op)
	require.Equal(t, controller.Failed, res.Decision)
	require.ErrorContains(t, res.Err, "is a symbolic link; load the file it points to")
	require.ErrorContains(t, res.Err, "the previous version keeps running")
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	require.Empty(t, r.c.LastResults(), "reported once")

	// a regular file again, in a directory others can write
	require.NoError(t, os.Remove(src))
	require.NoError(t, os.WriteFile(src, []byte(feature("v3-open-dir")), 0o600))
	require.NoError(t, os.Chmod(dir, 0o777))
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	res = r.c.LastResults()[0]
	require.Equal(t, controller.Failed, res.Decision)
	require.ErrorContains(t, res.Err, "directory "+dir+" is writable by group or others")

	n := len(r.lines)
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	require.Greater(t, len(r.lines), n)
	require.True(t, strings.HasPrefix(r.lines[len(r.lines)-1], "v1 "), "v1 still runs: %s", r.lines[len(r.lines)-1])

	// fixed: the next change reloads
	require.NoError(t, os.Chmod(dir, 0o700))
	require.NoError(t, os.WriteFile(src, []byte(feature("v4")), 0o600))
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	res = r.c.LastResults()[0]
	require.Equal(t, controller.Applied, res.Decision, "%v", res.Err)
	r.c.Apply(r.env, torchenv.TrainStepEnd)
	require.True(t, strings.HasPrefix(r.lines[len(r.lines)-1], "v4 "), r.lines[len(r.lines)-1])
}
