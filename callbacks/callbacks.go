// Package callbacks holds what hotcb's built-in callbacks share: registration under both their
// Go import path and the Python hotcb names (so that hotcb's own commands, such as
// `--path hotcb.modules.cb.callbacks.timing --symbol TimingCallback`, load them verbatim), and
// output locations confined to the run directory. The callbacks themselves live in the
// sub-packages (timing, featviz, stats, ...); package callbacks/all imports every one.
package callbacks

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/torchenv"
)

// PythonPackage is the Python hotcb package that exports every built-in callback.
const PythonPackage = "hotcb.modules.cb.callbacks"

// Register adds a built-in to the default registry under its Go path and symbol, and under
// hotcb's Python names: PythonPackage.<pyModule> and PythonPackage itself, with pySymbol.
func Register(goPath, symbol, pyModule, pySymbol string, f callback.Factory) {
	callback.Register(goPath, symbol, f)
	if pySymbol != "" {
		callback.Register(PythonPackage+"."+pyModule, pySymbol, f)
		callback.Register(PythonPackage, pySymbol, f)
	}
}

// ErrOutsideRunDir is returned for output paths that leave the run directory.
var ErrOutsideRunDir = errors.New("output path is outside the run directory")

// OutPath resolves an output path given in params: relative paths are joined to the env's run
// directory (the current directory when the env has none); absolute paths and paths with ".."
// must stay inside it unless allowOutside is set. The parent directory is created (0700).
func OutPath(env *torchenv.Env, p string, allowOutside bool) (string, error) {
	root := "."
	if env != nil && env.RunDir != "" {
		root = env.RunDir
	}
	rootAbs, err := filepath.Abs(root)
	if err != nil {
		return "", err
	}
	full := p
	if !filepath.IsAbs(p) {
		full = filepath.Join(rootAbs, p)
	}
	full = filepath.Clean(full)
	if !allowOutside {
		rel, err := filepath.Rel(rootAbs, full)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", fmt.Errorf("%w: %s (run dir %s)", ErrOutsideRunDir, p, rootAbs)
		}
	}
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		return "", err
	}
	return full, nil
}
