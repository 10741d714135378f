package harness

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// Machine describes the hardware without naming the host.
type Machine struct {
	CPU         string `json:"cpu"`
	NProc       int    `json:"nproc"`
	MemoryBytes int64  `json:"memory_bytes"`
	Memory      string `json:"memory"`
	OS          string `json:"os"`
}

// DescribeMachine reads the CPU model from /proc/cpuinfo and the memory from /proc/meminfo;
// what it cannot read stays empty.
func DescribeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		m.CPU = cpuModel(f)
		f.Close()
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemoryBytes = memTotal(string(b))
		m.Memory = fmt.Sprintf("%.1f GiB", float64(m.MemoryBytes)/(1<<30))
	}
	return m
}

func cpuModel(f *os.File) string {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memTotal parses "MemTotal:  24576000 kB" into bytes.
func memTotal(meminfo string) int64 {
	for line := range strings.Lines(meminfo) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// ReferenceBLAS is Debian's netlib BLAS. libtorch falls back to it, about 9x slower on
// matmuls, when no optimised BLAS (libopenblas0-pthread) provides libblas.so.3.
const ReferenceBLAS = "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3"

// BLAS says which BLAS libraries a process has mapped.
type BLAS struct {
	Kind      string   `json:"kind"` // openblas, mkl, reference, unknown
	Libraries []string `json:"libraries"`
	Warning   string   `json:"warning,omitempty"`
}

// MappedBLAS lists the shared libraries with "blas" or "mkl" in their file name mapped into
// this process (call it after a matmul so a lazily loaded BLAS shows up) and classifies them.
func MappedBLAS() (BLAS, error) {
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return BLAS{Kind: "unknown"}, err
	}
	return ClassifyBLAS(BLASLibraries(string(b))), nil
}

// BLASLibraries extracts the distinct BLAS library paths from the text of /proc/PID/maps.
func BLASLibraries(maps string) []string {
	var libs []string
	for line := range strings.Lines(maps) {
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := strings.TrimSpace(line[i:])
		base := path[strings.LastIndexByte(path, '/')+1:]
		if (strings.Contains(base, "blas") || strings.Contains(base, "mkl")) && !slices.Contains(libs, path) {
			libs = append(libs, path)
		}
	}
	return libs
}

// ClassifyBLAS names the BLAS behind a list of mapped libraries and warns, loudly, when the
// reference BLAS is among them: the dynamic linker may resolve sgemm_ to it.
func ClassifyBLAS(libs []string) BLAS {
	b := BLAS{Kind: "unknown", Libraries: libs}
	for _, l := range libs {
		switch {
		case l == ReferenceBLAS || strings.Contains(l, "/blas/libblas"):
			b.Kind = "reference"
			b.Warning = "WARNING: reference BLAS " + l + " is loaded: libtorch matmuls run ~9x " +
				"slower than with OpenBLAS and every number below is meaningless. " +
				"Install libopenblas0-pthread (make deps) or select it with update-alternatives."
			return b
		case strings.Contains(l, "openblas"):
			b.Kind = "openblas"
		case strings.Contains(l, "mkl") && b.Kind == "unknown":
			b.Kind = "mkl"
		}
	}
	if len(libs) == 0 {
		b.Warning = "WARNING: no BLAS library found in /proc/self/maps"
	}
	return b
}
