package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// TorchBinary is the name of the hotcb build that links libtorch (cmd/hotcb-torch): the same
// commands, plus train and version's libtorch details run in its own process.
const TorchBinary = "hotcb-torch"

// TorchEnv names hotcb-torch explicitly: when it is set, HandOff looks nowhere else.
const TorchEnv = "HOTCB_TORCH"

// handedOffEnv is set in hotcb-torch's environment by HandOff, to the path of the binary that
// handed off. A binary without libtorch that finds it set was itself started by a hand-off and
// refuses to hand off again (HOTCB_TORCH naming hotcb would loop forever); Run clears it in a
// binary with libtorch, so that processes it starts do not inherit it.
const handedOffEnv = "HOTCB_HANDED_OFF"

// FindTorch returns the path of hotcb-torch: $HOTCB_TORCH when it is set, else hotcb-torch in
// the directory of this executable, else hotcb-torch on PATH.
func FindTorch() (string, error) {
	self, _ := os.Executable() // "" when unknown: that step is skipped
	return findTorch(os.Getenv, self, exec.LookPath)
}

// errTorchEnv is a $HOTCB_TORCH that cannot be run.
var errTorchEnv = errors.New("$" + TorchEnv)

func findTorch(getenv func(string) string, self string, lookPath func(string) (string, error)) (string, error) {
	if p := getenv(TorchEnv); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%w is %s, which cannot be run: %v", errTorchEnv, p, err)
		}
		return p, nil
	}
	var where []string
	if self != "" {
		dir := filepath.Dir(self)
		if p := filepath.Join(dir, TorchBinary); executable(p) == nil {
			return p, nil
		}
		where = append(where, "not in "+dir)
	}
	if p, err := lookPath(TorchBinary); err == nil {
		return p, nil
	}
	where = append(where, "not on PATH", "and $"+TorchEnv+" is unset")
	return "", errors.New(strings.Join(where, ", "))
}

// executable reports why p is not a file that can be executed.
func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory", p)
	case fi.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not executable", p)
	}
	return nil
}

// HandOff replaces this process with hotcb-torch (FindTorch) run with args, the arguments this
// process was given, unchanged: what needs libtorch runs there, with this process's id, so
// signals and the exit status go straight through. It returns only on failure; what names the
// command, for the error.
func HandOff(what string, args []string) error {
	self, _ := os.Executable()
	if from := os.Getenv(handedOffEnv); from != "" {
		return hinted(fmt.Errorf("%s needs libtorch: %s handed it to %s, which does not link libtorch either", what, from, self),
			"point "+TorchEnv+" at hotcb-torch (make build puts it in bin/), not at hotcb")
	}
	path, err := FindTorch()
	if errors.Is(err, errTorchEnv) {
		return hinted(fmt.Errorf("%s needs libtorch, which hotcb does not link: %w", what, err),
			"point "+TorchEnv+" at hotcb-torch (make build puts it in bin/), or unset it")
	}
	if err != nil {
		return hinted(fmt.Errorf("%s needs libtorch, which hotcb does not link, and %s was not found: %w", what, TorchBinary, err),
			"'make build' builds both bin/hotcb and bin/hotcb-torch; install hotcb-torch next to hotcb or on PATH, or set "+TorchEnv+" to its path")
	}
	mark := self
	if mark == "" {
		mark = "hotcb"
	}
	env := append(os.Environ(), handedOffEnv+"="+mark)
	err = syscall.Exec(path, append([]string{path}, args...), env)
	return fmt.Errorf("%s needs libtorch: cannot run %s: %w", what, path, err)
}
