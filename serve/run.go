package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotcb/hotcb/rundir"
)

// Files of callbacks the dashboard reads (their default places in the run directory).
const (
	TimingFile = "timing/timing.jsonl"       // callbacks/timing
	SystemFile = "system/system_stats.jsonl" // callbacks/system
	maxStatus  = 16 << 20                    // bytes of hotcb.status.json read at most
	staleAfter = 30 * time.Second            // a status older than this is stale (as hotcb status)
	minPoll    = 100 * time.Millisecond      // files are read at most this often per run
	galleryGap = 2 * time.Second             // the run directory is listed for frames at most this often
	maxFrames  = 20_000                      // frames listed at most
	walkBudget = 50_000                      // directory entries looked at per listing at most
	walkDepth  = 3                           // directory levels below the run directory listed
)

// kinds of change the server announces.
const (
	kindMetrics = "metrics"
	kindLedger  = "ledger"
	kindStatus  = "status"
	kindTiming  = "timing"
	kindSystem  = "system"
	kindGallery = "gallery"
)

// kinds lists them in the order refresh reads them.
var kinds = []string{kindMetrics, kindLedger, kindTiming, kindSystem, kindStatus, kindGallery}

// run is one run directory and what has been read of its files.
type run struct {
	name    string
	dir     string // absolute
	root    *os.Root
	metrics MetricsSource
	timing  *seriesFile
	system  *seriesFile
	ledger  *ledgerFile

	pollMu   sync.Mutex // one poll at a time
	lastPoll time.Time

	mu       sync.RWMutex
	versions map[string]uint64
	status   statusState
	rate     []stepAt // observed (time, step), newest last
	frames   []Frame
	framesAt time.Time
}

type statusState struct {
	stamp fileStamp
	st    *rundir.RunStatus
	raw   map[string]json.RawMessage
	err   string
}

type fileStamp struct {
	size  int64
	mtime time.Time
	ino   uint64
}

type stepAt struct {
	t    time.Time
	step int64
}

// Frame is one feature-map picture of callbacks/featviz: <dir>/step%08d_<layer>.png.
type Frame struct {
	Path  string `json:"path"` // relative to the run directory, with slashes
	Dir   string `json:"dir"`
	Step  int64  `json:"step"`
	Layer string `json:"layer"`
	MTime int64  `json:"mtime_ms"`
	Size  int64  `json:"size"`
}

var frameRE = regexp.MustCompile(`^step(\d+)_(.+)\.png$`)

func openRun(name, dir string) (*run, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	return &run{name: name, dir: abs, root: root, metrics: NewMetricsSource(root, MetricsFile),
		timing: newSeriesFile(root, TimingFile, recordValues), system: newSeriesFile(root, SystemFile, recordValues),
		ledger: newLedgerFile(root), versions: map[string]uint64{}}, nil
}

func (r *run) close() { r.root.Close() }

// refresh reads what the run's files gained since the last refresh (at most every minPoll unless
// force) and bumps the version of each kind that changed (the event hub announces versions).
func (r *run) refresh(now time.Time, force bool) {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	if !force && now.Sub(r.lastPoll) < minPoll {
		return
	}
	r.lastPoll = now
	var changed []string
	if r.metrics.Poll() {
		changed = append(changed, kindMetrics)
	}
	if r.ledger.poll() {
		changed = append(changed, kindLedger)
	}
	if r.timing.Poll() {
		changed = append(changed, kindTiming)
	}
	if r.system.Poll() {
		changed = append(changed, kindSystem)
	}
	if r.pollStatus() {
		changed = append(changed, kindStatus)
	}
	if now.Sub(r.framesAt) >= galleryGap || force {
		if r.scanFrames(now) {
			changed = append(changed, kindGallery)
		}
	}
	step := r.currentStep()
	r.mu.Lock()
	for _, k := range changed {
		r.versions[k]++
	}
	if n := len(r.rate); step >= 0 && (n == 0 || r.rate[n-1].step != step) {
		if n > 0 && step < r.rate[n-1].step {
			r.rate = r.rate[:0] // resumed from an earlier step
		}
		r.rate = append(r.rate, stepAt{now, step})
		cut := 0
		for cut < len(r.rate)-2 && now.Sub(r.rate[cut].t) > time.Minute {
			cut++
		}
		r.rate = r.rate[cut:]
	}
	r.mu.Unlock()
}

// pollStatus reads hotcb.status.json when it changed.
func (r *run) pollStatus() bool {
	fi, err := r.root.Lstat(rundir.Status)
	var stamp fileStamp
	if err == nil {
		stamp = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			stamp.ino = st.Ino
		}
	}
	r.mu.RLock()
	same := r.status.stamp == stamp
	r.mu.RUnlock()
	if same {
		return false
	}
	s := statusState{stamp: stamp}
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		s.err = err.Error()
	case fi.Mode()&fs.ModeSymlink != 0:
		s.err = rundir.Status + " is a symbolic link; not read"
	default:
		b, err := r.readFile(rundir.Status, maxStatus)
		if err != nil {
			s.err = err.Error()
			break
		}
		var st rundir.RunStatus
		if err := json.Unmarshal(b, &st); err != nil {
			s.err = fmt.Sprintf("%s is not a hotcb status file: %v", rundir.Status, err)
			break
		}
		json.Unmarshal(b, &s.raw)
		s.st = &st
	}
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
	return true
}

// readFile reads a regular file of the run directory (through its root), at most limit bytes.
func (r *run) readFile(name string, limit int64) ([]byte, error) {
	f, err := r.root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d read", name, fi.Size(), limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}

// scanFrames lists the feature-map pictures under the run directory.
func (r *run) scanFrames(now time.Time) bool {
	var frames []Frame
	budget := walkBudget
	fs.WalkDir(r.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		budget--
		if err != nil || budget < 0 || len(frames) >= maxFrames {
			if d != nil && d.IsDir() && p != "." {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && (strings.Count(p, "/") >= walkDepth || strings.HasPrefix(d.Name(), ".") || d.Name() == rundir.Sources) {
				return fs.SkipDir
			}
			return nil
		}
		m := frameRE.FindStringSubmatch(d.Name())
		if m == nil || !d.Type().IsRegular() {
			return nil
		}
		step, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		frames = append(frames, Frame{Path: p, Dir: path.Dir(p), Step: step, Layer: m[2], MTime: fi.ModTime().UnixMilli(), Size: fi.Size()})
		return nil
	})
	sort.Slice(frames, func(i, j int) bool {
		a, b := frames[i], frames[j]
		if a.Dir != b.Dir {
			return a.Dir < b.Dir
		}
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		return a.Layer < b.Layer
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.framesAt = now
	changed := len(frames) != len(r.frames)
	for i := 0; !changed && i < len(frames); i++ {
		changed = frames[i] != r.frames[i]
	}
	r.frames = frames
	return changed
}

// currentStep is the newest step the run's files show: the status's or the metrics'.
func (r *run) currentStep() int64 {
	step, _ := r.metrics.Last()
	r.mu.RLock()
	if r.status.st != nil {
		step = max(step, r.status.st.Step)
	}
	r.mu.RUnlock()
	return step
}

// version is the change counter of a kind.
func (r *run) version(kind string) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.versions[kind]
}

// statusFilesInside checks that the status files the CLI's status reads (the run's and each
// rank's) are not symbolic links, so that /api/status never shows a file from outside the run.
func (r *run) statusFilesInside() error {
	check := func(name string, dir bool) error {
		fi, err := r.root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 || dir != fi.IsDir() {
			return fmt.Errorf("%s is a symbolic link or not a %s; not served", name, map[bool]string{true: "directory", false: "regular file"}[dir])
		}
		return nil
	}
	if err := check(rundir.Status, false); err != nil {
		return err
	}
	if err := check(rundir.RanksDir, true); err != nil {
		return err
	}
	for _, rk := range rundir.Dir(r.dir).Ranks()[1:] {
		d := path.Join(rundir.RanksDir, strconv.Itoa(rk))
		if err := check(d, true); err != nil {
			return err
		}
		if err := check(path.Join(d, rundir.Status), false); err != nil {
			return err
		}
	}
	return nil
}

// isRunDir says whether dir holds any of the files of a hotcb run directory.
func isRunDir(dir string) bool {
	for _, n := range []string{rundir.Status, rundir.Applied, rundir.Commands, rundir.Config, MetricsFile, rundir.Freeze} {
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			return true
		}
	}
	return false
}
