#!/usr/bin/env bash
# hotcb-go GPU check, for a machine with an NVIDIA GPU and PyTorch but NO Go and NO network.
#
#   scripts/gpu-check.sh [BUNDLE]    # BUNDLE: made by scripts/build-gpu-bundle.sh (default: ..)
#
# 1. builds the libtorch shim against this machine's PyTorch (its torch/include and torch/lib,
#    its C++ ABI, CUDA headers from CUDA_HOME, nvcc, /usr/local/cuda or pip's nvidia packages):
#    `make shim WITH_CUDA=1 ...` into BUNDLE/shim/;
# 2. runs the Go test binaries prebuilt in BUNDLE/pkg/ (gzipped; unpacked next to them) (bridge, nn, optim, timing, featviz,
#    trainer, gpucheck — tests and benchmarks) with that shim first in LD_LIBRARY_PATH;
# 3. writes BUNDLE/bench/results/gpu-<date>.json: GPU (nvidia-smi), torch version, each suite's
#    and each check's pass/fail and numbers, the benchmarks. Exit status 0 only if all passed.
#
# Environment:
#   PYTHON                 python that imports torch (default python3)
#   CUDA_HOME              a CUDA toolkit to take headers (and, failing torch's own, libcudart) from
#   CXX                    C++ compiler (default g++); make is needed too
#   TORCH_INCLUDE, TORCH_LIB, CXX11_ABI   override what is read from torch
#   GPU_CHECK_OUT          results file (default BUNDLE/bench/results/gpu-<date>.json)
#   GPU_CHECK_ALLOW_CPU=1  dry run without CUDA: a CPU shim (torch's, or the system libtorch in
#                          /usr/include), the same binaries, the CUDA checks skip; results go to
#                          gpu-cpu-dryrun-<date>.json. Proves the script, not the GPU.
#   GPU_CHECK_SHORT=0      run the bridge suites without -test.short (adds the long memory test)
#   GPU_CHECK_BENCHTIME    -test.benchtime of the gpucheck benchmarks (default 1s)
#   GPU_CHECK_TIMEOUT      seconds per test binary (default 600)
#   GPUCHECK_STEPS         training steps of the GPU training check (default 300)
set -uo pipefail

say() { printf '\033[1mgpu-check:\033[0m %s\n' "$*" >&2; }
die() {
	printf '\033[1mgpu-check: error:\033[0m %s\n' "$*" >&2
	exit 2
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bundle=$(cd "${1:-$here/..}" 2>/dev/null && pwd) || die "no bundle directory ${1:-$here/..}"
[[ -f $bundle/Makefile && -d $bundle/cpp && -d $bundle/pkg ]] ||
	die "$bundle is not a GPU-check bundle (Makefile, cpp/, pkg/ expected): build one with scripts/build-gpu-bundle.sh where Go is installed"
dry=${GPU_CHECK_ALLOW_CPU:-0}
py=${PYTHON:-python3}
CXX=${CXX:-g++}
jobs=$(nproc 2>/dev/null || echo 4)
date=$(date -u +%Y-%m-%d)
logs=$bundle/logs
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/*.jsonl

# --- tools ----------------------------------------------------------------------------------
command -v "$py" >/dev/null || die "no $py: PyTorch's python is needed (set PYTHON=/path/to/python)"
command -v make >/dev/null || die "make is not installed: it builds the shim (apt-get install make / dnf install make)"
command -v "$CXX" >/dev/null ||
	die "the C++ compiler '$CXX' is not installed: the shim is C++ built against libtorch. Install g++ (apt-get install g++ / dnf install gcc-c++) or set CXX to a C++20 compiler (C++17 does for libtorch < 2.14)"

# the Go binaries were linked against the bundle builder's glibc: this one must be as new
need_glibc=$(sed -n 's/.*"needs_glibc": *"\([0-9.]*\)".*/\1/p' "$bundle/MANIFEST.json" 2>/dev/null)
have_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [[ -n $need_glibc && -n $have_glibc && $(printf '%s\n%s\n' "$need_glibc" "$have_glibc" | sort -V | head -1) != "$need_glibc" ]]; then
	die "this machine has glibc $have_glibc; the bundle's Go binaries need glibc >= $need_glibc (e.g. Ubuntu 22.04 or newer, Debian 12)"
fi

# --- PyTorch: where its headers and libraries are, its ABI, its CUDA ------------------------
torch_env=$("$py" - 2>"$logs/python.log" <<'EOF'
import importlib.util, os, shlex, sys
import torch
d = os.path.dirname(torch.__file__)
out = {
    "TORCH_VERSION": torch.__version__,
    "TORCH_DIR": d,
    "TORCH_ABI": "1" if torch._C._GLIBCXX_USE_CXX11_ABI else "0",
    "TORCH_CUDA": torch.version.cuda or "",
    "TORCH_CUDA_AVAILABLE": "1" if torch.cuda.is_available() else "0",
    "TORCH_DEVICE": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "",
    "TORCH_CUDNN": str(torch.backends.cudnn.version() or "") if torch.cuda.is_available() else "",
    "PY_VERSION": sys.version.split()[0],
}
# pip's CUDA wheels (nvidia-cuda-runtime-cu12, nvidia-cublas-cu12, ...) install under nvidia/
spec = importlib.util.find_spec("nvidia")
out["NVIDIA_DIRS"] = ":".join(spec.submodule_search_locations) if spec and spec.submodule_search_locations else ""
for k, v in out.items():
    print(f"{k}={shlex.quote(v)}")
EOF
)
have_torch=1
if [[ -z $torch_env ]]; then
	have_torch=0
	[[ $dry == 1 ]] || die "$py cannot import torch ($(tail -1 "$logs/python.log")): set PYTHON to the python that has PyTorch"
	say "no PyTorch in $py: dry run against the system libtorch (/usr/include)"
	TORCH_VERSION="" TORCH_DIR="" TORCH_ABI="" TORCH_CUDA="" TORCH_CUDA_AVAILABLE=0 TORCH_DEVICE="" TORCH_CUDNN="" NVIDIA_DIRS="" PY_VERSION=""
else
	eval "$torch_env"
	say "PyTorch $TORCH_VERSION in $TORCH_DIR (CUDA ${TORCH_CUDA:-none}, C++11 ABI $TORCH_ABI, python $PY_VERSION)"
fi

if [[ -z ${TORCH_INCLUDE:-} ]]; then
	if [[ -n $TORCH_DIR && -f $TORCH_DIR/include/ATen/ATen.h ]]; then
		TORCH_INCLUDE=$TORCH_DIR/include
	elif [[ -f /usr/include/ATen/ATen.h ]]; then
		TORCH_INCLUDE=/usr/include # Debian's libtorch-dev
	else
		die "no libtorch headers: ${TORCH_DIR:-torch}/include/ATen/ATen.h is missing (a PyTorch wheel ships them; set TORCH_INCLUDE)"
	fi
fi
if [[ -z ${TORCH_LIB+set} ]]; then
	TORCH_LIB=""
	if [[ -n $TORCH_DIR && -e $TORCH_DIR/lib/libtorch.so ]]; then TORCH_LIB=$TORCH_DIR/lib; fi
fi
if [[ -z ${CXX11_ABI:-} ]]; then
	CXX11_ABI=${TORCH_ABI:-1}
	[[ -n $CXX11_ABI ]] || CXX11_ABI=1
fi
say "libtorch headers $TORCH_INCLUDE, libraries ${TORCH_LIB:-(system)}, _GLIBCXX_USE_CXX11_ABI=$CXX11_ABI"
# The standard the Makefile will pick (C++20 when the compiler has it); PyTorch >= 2.14 needs it.
cxx_std=c++17
if echo 'int main(){}' | "$CXX" -std=c++20 -x c++ -fsyntax-only - >/dev/null 2>&1; then cxx_std=c++20; fi
cxx_problem=$("$bundle/scripts/check-cxx.sh" "$CXX" "$cxx_std" "$TORCH_INCLUDE" 2>&1) || die "$cxx_problem"
say "C++ standard: -std=$cxx_std ($("$CXX" --version | head -1))"

# --- CUDA: headers, and the libcudart that torch itself uses --------------------------------
with_cuda=1
cuda_home_used=""
cuda_includes=()
cudart_dir=""
nv_lib_path=""
if [[ $dry == 1 ]]; then
	with_cuda=0
	say "GPU_CHECK_ALLOW_CPU=1: building a CPU-only shim; the CUDA checks will skip"
else
	[[ -n $TORCH_CUDA ]] || die "PyTorch $TORCH_VERSION is a CPU build (torch.version.cuda is None): install a CUDA build of PyTorch"
	[[ $TORCH_CUDA_AVAILABLE == 1 ]] || die "torch.cuda.is_available() is False: no usable GPU or driver (see nvidia-smi); GPU_CHECK_ALLOW_CPU=1 does a dry run"
	nv_inc=() nv_rt_inc="" nv_cudart=""
	IFS=: read -r -a nv_roots <<<"$NVIDIA_DIRS"
	for r in ${nv_roots[@]+"${nv_roots[@]}"}; do
		for inc in "$r"/*/include; do [[ -d $inc ]] && nv_inc+=("$inc"); done
		# torch's CUDA libraries (cuBLAS, cuDNN, NCCL, ...): python preloads them on import; a Go
		# binary relies on libtorch_cuda's rpath, and on these in LD_LIBRARY_PATH should that miss
		for lib in "$r"/*/lib; do [[ -d $lib ]] && nv_lib_path+=:$lib; done
		[[ -f $r/cuda_runtime/include/cuda_runtime_api.h ]] && nv_rt_inc=$r/cuda_runtime/include
		for so in "$r"/cuda_runtime/lib/libcudart.so*; do [[ -e $so ]] && nv_cudart=$so; done
	done
	nvcc_home=""
	if command -v nvcc >/dev/null; then nvcc_home=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")"); fi
	# headers: an explicit CUDA_HOME wins; then pip's runtime headers (they match the libcudart
	# torch loads); then nvcc's toolkit; then /usr/local/cuda
	primary=""
	for c in "${CUDA_HOME:+$CUDA_HOME/include}" "$nv_rt_inc" "${nvcc_home:+$nvcc_home/include}" /usr/local/cuda/include; do
		if [[ -n $c && -f $c/cuda_runtime_api.h ]]; then
			primary=$c
			break
		fi
	done
	[[ -n $primary ]] || die "no CUDA headers (cuda_runtime_api.h): set CUDA_HOME to a CUDA toolkit, put nvcc on PATH, or pip install nvidia-cuda-runtime-cu${TORCH_CUDA%%.*}"
	cuda_includes=("$primary")
	for inc in ${nv_inc[@]+"${nv_inc[@]}"}; do [[ $inc != "$primary" ]] && cuda_includes+=("$inc"); done
	# ATen/cuda/CUDAContext.h also includes cuBLAS, cuSPARSE and cuSOLVER headers
	for h in cuda_runtime_api.h cublas_v2.h cublasLt.h cusparse.h cusolverDn.h; do
		found=0
		for inc in ${cuda_includes[@]+"${cuda_includes[@]}"}; do [[ -f $inc/$h ]] && found=1 && break; done
		((found)) || say "warning: $h is in none of ${cuda_includes[*]}; the build may fail (install the CUDA toolkit's headers or pip's nvidia-*-cu12 packages)"
	done
	# libcudart: the one torch loads (pip's nvidia-cuda-runtime, or a copy in torch/lib), else the
	# toolkit's. The Makefile links -L$(CUDA_HOME)/lib64 -lcudart, so a small CUDA_HOME of links
	# points it at that file (pip ships only libcudart.so.12, no libcudart.so).
	cudart=$nv_cudart
	if [[ -z $cudart ]]; then for so in "$TORCH_LIB"/libcudart*.so*; do [[ -e $so ]] && cudart=$so; done; fi
	if [[ -z $cudart ]]; then
		for c in "${CUDA_HOME:-}" "$nvcc_home" /usr/local/cuda; do
			[[ -n $c && -e $c/lib64/libcudart.so ]] && cudart=$(readlink -f "$c/lib64/libcudart.so") && break
		done
	fi
	[[ -n $cudart ]] || die "no libcudart: neither pip's nvidia-cuda-runtime, torch/lib nor a CUDA toolkit has it"
	cudart_dir=$(dirname "$cudart")
	cuda_home_used=$bundle/shim/cuda-home
	rm -rf "$cuda_home_used"
	mkdir -p "$cuda_home_used/lib64"
	ln -s "$primary" "$cuda_home_used/include"
	ln -s "$cudart" "$cuda_home_used/lib64/libcudart.so"
	say "CUDA $TORCH_CUDA: headers ${cuda_includes[*]}; libcudart $cudart"
fi

# --- 1. the shim ----------------------------------------------------------------------------
shim_dir=$bundle/shim
[[ $with_cuda == 1 ]] || shim_dir=$bundle/shim-cpu
rm -rf "$shim_dir/obj" "$shim_dir/libhotcb_torch.so"
mkdir -p "$shim_dir"
extra=""
for inc in ${cuda_includes[@]+"${cuda_includes[@]}"}; do extra+=" -I$inc"; done
# comma=, : the Makefile defines `comma` after the := line that uses it in -Wl,-rpath,$(TORCH_LIB),
# so without it on the command line a TORCH_LIB build links with "-Wl-rpath..." and fails.
make_args=(-C "$bundle" shim -j"$jobs" "comma=," BUILD="$shim_dir" CXX="$CXX" CXXFLAGS="-O2 -g0$extra"
	TORCH_INCLUDE="$TORCH_INCLUDE" TORCH_LIB="$TORCH_LIB" CXX11_ABI="$CXX11_ABI" WITH_CUDA="$with_cuda")
[[ $with_cuda == 1 ]] && make_args+=(CUDA_HOME="$cuda_home_used")
say "building the shim: make ${make_args[*]}"
t0=$(date +%s)
if ! make "${make_args[@]}" >"$logs/shim-build.log" 2>&1; then
	tail -30 "$logs/shim-build.log" >&2
	die "the shim did not build (full log: $logs/shim-build.log)"
fi
shim_seconds=$(($(date +%s) - t0))
say "shim built in ${shim_seconds}s: $shim_dir/libhotcb_torch.so"

# --- 2. the Go test binaries ----------------------------------------------------------------
ld_path=$shim_dir
[[ -n $TORCH_LIB ]] && ld_path+=:$TORCH_LIB
[[ -n $cudart_dir ]] && ld_path+=:$cudart_dir
ld_path+=$nv_lib_path
export LD_LIBRARY_PATH=$ld_path${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export GPUCHECK_RESULTS=$logs/gpucheck-results.jsonl
export GPUCHECK_ROOT=$bundle
[[ $with_cuda == 1 ]] && export GPUCHECK_REQUIRE_CUDA=1
short=()
[[ ${GPU_CHECK_SHORT:-1} == 1 ]] && short=(-test.short)
timeout_s=${GPU_CHECK_TIMEOUT:-600}
tmo=()
command -v timeout >/dev/null && tmo=(timeout "$timeout_s")

# the bundle carries the binaries gzipped
while IFS= read -r gz; do
	bin=${gz%.gz}
	if [[ ! -x $bin || $gz -nt $bin ]]; then
		if ! { gzip -dc "$gz" >"$bin.tmp" && chmod 755 "$bin.tmp" && mv "$bin.tmp" "$bin"; }; then die "cannot unpack $gz"; fi
	fi
done < <(find "$bundle/pkg" -name '*.test.gz' -type f)

suites_file=$logs/suites.tsv
: >"$suites_file"
count() { grep -cE "^\s*--- $1: \S+ \([0-9.]+s\)" "$log"; } # tests (and subtests) of $log
while IFS= read -r bin; do
	rel=${bin#"$bundle/pkg/"}
	pkg=$(dirname "$rel")
	name=$(basename "$bin" .test)
	log=$logs/${pkg//\//_}.log
	args=(-test.v -test.count=1)
	if [[ $name == gpucheck ]]; then
		args+=(-test.bench=. -test.benchtime="${GPU_CHECK_BENCHTIME:-1s}")
	else
		args+=(${short[@]+"${short[@]}"})
	fi
	say "running $pkg ..."
	t0=$(date +%s)
	(cd "$(dirname "$bin")" && ${tmo[@]+"${tmo[@]}"} "./$name.test" "${args[@]}") >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	printf '%s\t%s\t%s\t%s\n' "$pkg" "$rc" "$secs" "$log" >>"$suites_file"
	summary="$(count PASS) passed, $(count FAIL) failed, $(count SKIP) skipped"
	if [[ $rc == 0 ]]; then say "  ok   $pkg (${secs}s; $summary)"; else say "  FAIL $pkg (exit $rc, ${secs}s; $summary) — $log"; fi
done < <(find "$bundle/pkg" -name '*.test' -type f | sort)

# --- 3. the results file --------------------------------------------------------------------
gpu_csv=""
if command -v nvidia-smi >/dev/null; then
	gpu_csv=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null | head -1 || true)
fi
if [[ $dry == 1 ]]; then out=${GPU_CHECK_OUT:-$bundle/bench/results/gpu-cpu-dryrun-$date.json}; else out=${GPU_CHECK_OUT:-$bundle/bench/results/gpu-$date.json}; fi
mkdir -p "$(dirname "$out")"
results_py=python3
[[ $have_torch == 1 ]] && results_py=$py
command -v "$results_py" >/dev/null || die "no python3 to write the results"
status=$(MODE=$([[ $dry == 1 ]] && echo cpu-dry-run || echo gpu) GPU_CSV="$gpu_csv" BUNDLE="$bundle" SUITES="$suites_file" OUT="$out" \
	SHIM="$shim_dir/libhotcb_torch.so" SHIM_SECONDS="$shim_seconds" WITH_CUDA="$with_cuda" T_INCLUDE="$TORCH_INCLUDE" T_LIB="$TORCH_LIB" \
	T_ABI="$CXX11_ABI" CUDA_INCLUDES="${cuda_includes[*]:-}" CUDART_DIR="$cudart_dir" T_VERSION="$TORCH_VERSION" T_CUDA="$TORCH_CUDA" \
	T_DEVICE="$TORCH_DEVICE" T_CUDNN="$TORCH_CUDNN" T_DIR="$TORCH_DIR" PY_VERSION="$PY_VERSION" \
	"$results_py" - <<'EOF'
import datetime, json, os, platform, re, socket

env = os.environ
def load_json(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

records = {}
try:
    with open(os.path.join(env["BUNDLE"], "logs", "gpucheck-results.jsonl")) as f:
        for line in f:
            line = line.strip()
            if line:
                r = json.loads(line)
                records[r.pop("test")] = r
except OSError:
    pass

line_re = re.compile(r"^(\s*)--- (PASS|FAIL|SKIP): (\S+) \(([\d.]+)s\)")
run_re = re.compile(r"^=== (?:RUN|CONT|PAUSE)\s+(\S+)")
bench_re = re.compile(r"^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+([\d.]+) ns/op(.*)$")
bench_skip_re = re.compile(r"^--- SKIP: (Benchmark\S+)\s*$")
bench_notes = []
suites, checks, benchmarks = [], {}, []
ok = True
for row in open(env["SUITES"]):
    pkg, rc, secs, log = row.rstrip("\n").split("\t")
    counts = {"PASS": 0, "FAIL": 0, "SKIP": 0}
    failed, current, lines = [], None, []
    text = open(log, errors="replace").read().splitlines()
    for ln in text:
        m = run_re.match(ln)
        if m:
            current, lines = m.group(1), []
            continue
        m = line_re.match(ln)
        if m:
            status, name, t = m.group(2), m.group(3), float(m.group(4))
            counts[status] += 1
            if status == "FAIL":
                failed.append(name)
            if pkg == "gpucheck" and "/" not in name:
                c = {"status": status.lower(), "seconds": t}
                notes = [l.strip() for l in lines if l.strip() and "result: {" not in l]
                if status == "SKIP" and notes:
                    c["reason"] = re.sub(r"^\S+\.go:\d+: ", "", notes[-1])
                if status == "FAIL":
                    c["output"] = notes[-20:]
                c.update(records.get(name, {}))
                checks[name] = c
            continue
        if current is not None and ln.startswith("    "):
            lines.append(ln)
        m = bench_skip_re.match(ln)
        if m:
            counts["SKIP"] += 1
            b = {"name": m.group(1), "status": "skip"}
            if bench_notes:
                b["reason"] = re.sub(r"^\S+\.go:\d+: ", "", bench_notes[-1].strip())
            benchmarks.append(b)
            continue
        if ln.startswith("Benchmark"):
            bench_notes = []
        elif ln.startswith("    "):
            bench_notes.append(ln)
        m = bench_re.match(ln)
        if m:
            metrics = {}
            rest = m.group(4).split()
            for i in range(0, len(rest) - 1, 2):
                try:
                    metrics[rest[i + 1]] = float(rest[i])
                except ValueError:
                    pass
            benchmarks.append({"name": m.group(1), "status": "ok", "iterations": int(m.group(2)), "ns_per_op": float(m.group(3)), "metrics": metrics})
    suite_ok = rc == "0" and counts["FAIL"] == 0
    if pkg == "gpucheck" and env["MODE"] == "gpu":
        # on a GPU machine a skipped check is a failed one: CUDA was not usable
        suite_ok = suite_ok and counts["SKIP"] == 0
    ok = ok and suite_ok
    suites.append({"package": pkg, "ok": suite_ok, "exit": int(rc), "seconds": int(secs), "passed": counts["PASS"],
                   "failed": counts["FAIL"], "skipped": counts["SKIP"], "failed_tests": failed,
                   "log": os.path.relpath(log, env["BUNDLE"])})

gpu = None
if env.get("GPU_CSV"):
    f = [x.strip() for x in env["GPU_CSV"].split(",")]
    gpu = {"name": f[0], "driver": f[1] if len(f) > 1 else None, "memory": f[2] if len(f) > 2 else None,
           "compute_capability": f[3] if len(f) > 3 else None, "source": "nvidia-smi"}
elif env.get("T_DEVICE"):
    gpu = {"name": env["T_DEVICE"], "source": "torch.cuda.get_device_name"}

env_check = checks.get("TestEnvironment", {})
if env["MODE"] == "gpu" and env_check.get("shim") and os.path.realpath(env_check["shim"]) != os.path.realpath(env["SHIM"]):
    ok = False  # the binaries loaded another shim than the one built here

result = {
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "mode": env["MODE"],
    "ok": ok,
    "host": {"hostname": socket.gethostname(), "kernel": platform.release(), "cpus": os.cpu_count(),
             "glibc": " ".join(platform.libc_ver())},
    "gpu": gpu,
    "torch": {"version": env.get("T_VERSION") or None, "cuda": env.get("T_CUDA") or None, "cudnn": env.get("T_CUDNN") or None,
              "dir": env.get("T_DIR") or None, "python": env.get("PY_VERSION") or None},
    "shim": {"path": env["SHIM"], "with_cuda": env["WITH_CUDA"] == "1", "build_seconds": int(env["SHIM_SECONDS"]),
             "torch_include": env["T_INCLUDE"], "torch_lib": env["T_LIB"] or None, "cxx11_abi": env["T_ABI"],
             "cuda_includes": env["CUDA_INCLUDES"].split() or None, "cudart_dir": env["CUDART_DIR"] or None,
             "loaded_by_tests": env_check.get("shim")},
    "bundle": load_json(os.path.join(env["BUNDLE"], "MANIFEST.json")),
    "suites": suites,
    "checks": checks,
    "benchmarks": benchmarks,
}
with open(env["OUT"], "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print("ok" if ok else "FAILED")
EOF
)
[[ $status == ok || $status == FAILED ]] || die "could not write $out"
say "results: $out"
if [[ $status == ok ]]; then
	say "all checks passed ($([[ $dry == 1 ]] && echo 'CPU dry run: the CUDA checks skipped' || echo "on ${gpu_csv%%,*}"))"
	exit 0
fi
say "some checks FAILED: see $out and $logs/"
exit 1
