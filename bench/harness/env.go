package harness

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// ThreadEnv are the variables that fix the thread pools libtorch does not control through
// at::set_num_threads: OpenBLAS (whose pthread build otherwise uses every core for a matmul)
// and OpenMP. They must be set before the libraries load, that is before the process starts.
var ThreadEnv = []string{"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}

// ThreadEnvFor returns ThreadEnv set to n, as NAME=VALUE.
func ThreadEnvFor(n int) []string {
	out := make([]string, len(ThreadEnv))
	for i, k := range ThreadEnv {
		out[i] = k + "=" + strconv.Itoa(n)
	}
	return out
}

// ReexecWithThreads re-executes the running program with ThreadEnv set to n unless it already
// is; it returns only when nothing needs to change (or with an error when exec fails).
func ReexecWithThreads(n int) error {
	want := strconv.Itoa(n)
	ok := true
	for _, k := range ThreadEnv {
		if os.Getenv(k) != want {
			ok = false
			if err := os.Setenv(k, want); err != nil {
				return err
			}
		}
	}
	if ok {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("re-exec with %d threads: %w", n, err)
	}
	return syscall.Exec(exe, os.Args, os.Environ())
}
