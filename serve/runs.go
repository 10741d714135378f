package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// runsRescan is how often the runs directory is listed again for new runs at most.
const runsRescan = 2 * time.Second

// runSet is the runs served: one run directory, or the run directories directly under a
// directory of runs (listed again as runs come and go).
type runSet struct {
	parent string // the runs directory; "" for one run

	mu      sync.Mutex
	runs    map[string]*run
	names   []string // sorted
	scanned time.Time
	err     error // the last listing's
}

func newSingleRun(dir string) (*runSet, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(abs)
	if name == "/" || name == "." {
		name = "run"
	}
	r, err := openRun(name, abs)
	if err != nil {
		return nil, err
	}
	return &runSet{runs: map[string]*run{name: r}, names: []string{name}}, nil
}

func newRunsDir(dir string) (*runSet, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &runSet{parent: abs, runs: map[string]*run{}}
	s.rescan(time.Now(), true)
	return s, s.err
}

// list returns the runs, sorted by name (listing the runs directory again when due).
func (s *runSet) list() []*run {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rescan(time.Now(), false)
	out := make([]*run, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.runs[n])
	}
	return out
}

// get finds a run by name; with name "" the only run.
func (s *runSet) get(name string) (*run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rescan(time.Now(), false)
	if name == "" {
		switch len(s.names) {
		case 1:
			return s.runs[s.names[0]], nil
		case 0:
			return nil, fmt.Errorf("no runs in %s yet", s.parent)
		}
		return nil, fmt.Errorf("which run? give ?run=NAME, one of: %s", strings.Join(s.names, ", "))
	}
	if r, ok := s.runs[name]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("no run %q (runs: %s)", name, strings.Join(s.names, ", "))
}

// rescan lists the runs directory: each subdirectory (not a symbolic link, not hidden) that
// holds a hotcb file is a run, named by its directory name. Called with s.mu held.
func (s *runSet) rescan(now time.Time, force bool) {
	if s.parent == "" || (!force && now.Sub(s.scanned) < runsRescan) {
		return
	}
	s.scanned = now
	ents, err := os.ReadDir(s.parent)
	if err != nil {
		s.err = err
		return
	}
	s.err = nil
	seen := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || strings.HasPrefix(name, ".") { // a symlink's type is not a directory
			continue
		}
		dir := filepath.Join(s.parent, name)
		if !isRunDir(dir) {
			continue
		}
		seen[name] = true
		if _, ok := s.runs[name]; ok {
			continue
		}
		if r, err := openRun(name, dir); err == nil {
			s.runs[name] = r
		}
	}
	for name, r := range s.runs {
		if !seen[name] {
			r.close()
			delete(s.runs, name)
		}
	}
	s.names = s.names[:0]
	for n := range s.runs {
		s.names = append(s.names, n)
	}
	sort.Strings(s.names)
}

func (s *runSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runs {
		r.close()
	}
}
