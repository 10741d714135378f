package harness

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Ref is a running reference process. It reads one command per line on stdin and answers each
// with one JSON object on stdout ({"error": "..."} on failure):
//
//	run MODE ITERS     → {"seconds": S, ...}   runs MODE's body ITERS times, timed inside
//	check MODE         → {"check": V}          a value the Go side must reproduce
//	check MODE STEPS   → {"check": V, "losses": [L1 ... L_STEPS]}
//	                                           and the losses of a fresh model's first STEPS
//	                                           training steps (modes that train)
//	load MODE PATH     → {"loaded": PATH}      MODE's inputs from a file the Go side wrote
//	info               → {...}                 versions, threads, BLAS
//	quit
//
// bench/cpp/ref.cpp and bench/python/ref.py implement it.
type Ref struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// StartRef starts path with args (which must make it serve the protocol) and extra environment.
func StartRef(path string, args []string, env []string) (*Ref, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return startRef(cmd)
}

// Do sends one command and decodes the answer into v (which may be nil).
func (r *Ref) Do(command string, v any) error {
	if _, err := io.WriteString(r.in, command+"\n"); err != nil {
		return fmt.Errorf("reference %q: %w", command, err)
	}
	line, err := r.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reference %q: no answer: %w", command, err)
	}
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		return fmt.Errorf("reference %q: bad answer %q: %w", command, line, err)
	}
	if e.Error != nil {
		return fmt.Errorf("reference %q: %s", command, *e.Error)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(line, v)
}

// Runner returns a Runner for one mode.
func (r *Ref) Runner(mode string) Runner {
	return func(iters int) (float64, error) {
		var a struct {
			Seconds *float64 `json:"seconds"`
		}
		if err := r.Do(fmt.Sprintf("run %s %d", mode, iters), &a); err != nil {
			return 0, err
		}
		if a.Seconds == nil {
			return 0, fmt.Errorf("reference: run %s: answer without seconds", mode)
		}
		return *a.Seconds, nil
	}
}

// Check returns the reference's check value for mode.
func (r *Ref) Check(mode string) (float64, error) {
	var a struct {
		Check *float64 `json:"check"`
	}
	if err := r.Do("check "+mode, &a); err != nil {
		return 0, err
	}
	if a.Check == nil {
		return 0, fmt.Errorf("reference: check %s: answer without check", mode)
	}
	return *a.Check, nil
}

// Losses returns the reference's check value for mode and the losses of the first steps
// training steps of a fresh model.
func (r *Ref) Losses(mode string, steps int) (float64, []float64, error) {
	var a struct {
		Check  *float64  `json:"check"`
		Losses []float64 `json:"losses"`
	}
	if err := r.Do(fmt.Sprintf("check %s %d", mode, steps), &a); err != nil {
		return 0, nil, err
	}
	if a.Check == nil || len(a.Losses) != steps {
		return 0, nil, fmt.Errorf("reference: check %s %d: answer without check or %d losses", mode, steps, steps)
	}
	return *a.Check, a.Losses, nil
}

// Load makes the reference load mode's inputs from path.
func (r *Ref) Load(mode, path string) error {
	if strings.ContainsAny(path, "\n\r") {
		return fmt.Errorf("reference: load %s: path %q has a line break", mode, path)
	}
	return r.Do("load "+mode+" "+path, nil)
}

// Pid is the reference process's id.
func (r *Ref) Pid() int { return r.cmd.Process.Pid }

// Close asks the process to quit and waits for it.
func (r *Ref) Close() error {
	_, _ = io.WriteString(r.in, "quit\n")
	r.in.Close()
	return r.cmd.Wait()
}

// CxxStd is the -std flag the shim's Makefile uses with cxx: c++20 when the compiler takes it
// (libtorch >= 2.14 requires it), else c++17.
func CxxStd(cxx string) string {
	cmd := exec.Command(cxx, "-std=c++20", "-x", "c++", "-fsyntax-only", "-")
	cmd.Stdin = strings.NewReader("int main(){}\n")
	if cmd.Run() == nil {
		return "-std=c++20"
	}
	return "-std=c++17"
}

// BuildCpp compiles src into out with the compiler and args given (args come between the
// source and "-o out"), unless out exists and is newer than src. It reports whether it built.
func BuildCpp(cxx, src, out string, args []string) (bool, error) {
	si, err := os.Stat(src)
	if err != nil {
		return false, err
	}
	if oi, err := os.Stat(out); err == nil && oi.ModTime().After(si.ModTime()) {
		return false, nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return false, err
	}
	argv := append([]string{src}, args...)
	argv = append(argv, "-o", out)
	cmd := exec.Command(cxx, argv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	fmt.Fprintf(os.Stderr, "build: %s %s\n", cxx, strings.Join(argv, " "))
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("build %s: %w", out, err)
	}
	return true, nil
}
