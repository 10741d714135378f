#!/usr/bin/env bash
# Builds the GPU-check bundle HERE (where Go is): prebuilt Go test binaries plus what is needed to
# build the libtorch shim on the GPU machine (cpp/, the Makefile) and scripts/gpu-check.sh, which
# runs it all there — a machine with an NVIDIA GPU and PyTorch, but no Go and no network.
#
#   scripts/build-gpu-bundle.sh [OUT]      # default build/gpu-bundle (≈40 MiB)
#   # copy OUT to the GPU machine, then there:
#   OUT/scripts/gpu-check.sh OUT
#
# Why this works: the Go side talks to libtorch only through the pure C ABI of
# cpp/hotcb_torch.h, so test binaries linked here against build/libhotcb_torch.so (Debian's
# libtorch 1.13, CPU) run unchanged against a CUDA shim built there from the same cpp/ sources.
# They find the shim through a RUNPATH (not RPATH), which LD_LIBRARY_PATH overrides; this script
# checks that, and records the newest glibc symbol version the binaries need (the GPU machine's
# glibc must be at least that).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/gpu-bundle}
GO=${GO:-go}
# Test binaries in the bundle: the bridge suites (every op against libtorch 2.x), the CUDA-aware
# callbacks, the trainer, and the GPU check itself.
pkgs=(bridge bridge/nn bridge/optim callbacks/timing callbacks/featviz trainer gpucheck)
limit_mib=64

say() { printf 'build-gpu-bundle: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

command -v "$GO" >/dev/null || die "no Go toolchain ($GO) on PATH"
cd "$root"
if [[ ! -f build/libhotcb_torch.so ]]; then
	say "build/libhotcb_torch.so is missing: building the CPU shim to link against (make shim)"
	make shim >&2
fi

case "$out" in /*) ;; *) out=$PWD/$out ;; esac
rm -rf "$out" "$out.tar.gz"
mkdir -p "$out/cpp" "$out/scripts" "$out/examples/callbacks" "$out/bench/results"

# 1. Test binaries, stripped (-s -w: no symbol table or DWARF; panics still print file:line).
for p in "${pkgs[@]}"; do
	name=$(basename "$p")
	dest="$out/pkg/$p"
	mkdir -p "$dest"
	say "go test -c ./$p"
	"$GO" test -c -trimpath -ldflags='-s -w' -o "$dest/$name.test" "./$p"
	# tests read ./testdata relative to their package directory: run them from $dest
	if [[ -d $p/testdata ]]; then cp -r "$p/testdata" "$dest/"; fi
done

# 2. What the GPU machine needs to build the shim and to run the go_file examples.
cp Makefile "$out/"
cp cpp/*.cpp cpp/*.h "$out/cpp/"
cp scripts/gpu-check.sh scripts/check-cxx.sh scripts/torch-version.sh "$out/scripts/"
cp examples/callbacks/*.go "$out/examples/callbacks/"
rm -f "$out"/examples/callbacks/*_test.go
chmod -R go-w "$out" # the go_file loader refuses group/world-writable sources

# 3. Checks: the shim is found through RUNPATH (LD_LIBRARY_PATH wins), and the glibc needed.
glibc=""
for bin in "$out"/pkg/*/*.test "$out"/pkg/*/*/*.test; do
	[[ -f $bin ]] || continue
	if command -v readelf >/dev/null; then
		dyn=$(readelf -d "$bin")
		grep -q 'NEEDED.*libhotcb_torch.so' <<<"$dyn" || die "$bin does not link libhotcb_torch.so"
		if grep -q '(RPATH)' <<<"$dyn"; then
			die "$bin has an RPATH, which LD_LIBRARY_PATH cannot override (want RUNPATH: -Wl,--enable-new-dtags)"
		fi
	fi
	if command -v objdump >/dev/null; then
		v=$(objdump -T "$bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1 || true)
		glibc=$(printf '%s\n%s\n' "$glibc" "$v" | sort -V | tail -1)
	fi
done

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
dirty=false # uncommitted changes (untracked files included) in what the bundle holds
if [[ -n $(git status --porcelain -- cpp bridge gpucheck trainer callbacks examples Makefile scripts 2>/dev/null) ]]; then dirty=true; fi
# the libtorch the shim in build/ was built against (only the C ABI matters to the binaries)
libtorch=$(sed -n 's/^#define TORCH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' \
	"${TORCH_INCLUDE:-/usr/include}/torch/csrc/api/include/torch/version.h" 2>/dev/null | paste -sd. -)
cat >"$out/MANIFEST.json" <<EOF
{
  "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "commit": "$commit",
  "dirty": $dirty,
  "go": "$("$GO" env GOVERSION)",
  "goarch": "$("$GO" env GOARCH)",
  "linked_against_libtorch": "$libtorch",
  "needs_glibc": "${glibc#GLIBC_}",
  "packages": [$(printf '"%s",' "${pkgs[@]}" | sed 's/,$//')]
}
EOF

cat >"$out/README.txt" <<'EOF'
hotcb-go GPU check bundle (made by scripts/build-gpu-bundle.sh; see MANIFEST.json).

On a Linux x86-64 machine with an NVIDIA GPU, PyTorch (python3 -c "import torch"), make and g++:

    scripts/gpu-check.sh .          # from this directory; or: path/to/bundle/scripts/gpu-check.sh path/to/bundle

It builds shim/libhotcb_torch.so against that PyTorch's libtorch with CUDA, unpacks and runs the
prebuilt Go test binaries under pkg/ (*.test.gz) against it (LD_LIBRARY_PATH), and writes
bench/results/gpu-<date>.json (logs in logs/).
Environment: PYTHON (default python3), CUDA_HOME, CXX, GPU_CHECK_OUT (results file),
GPU_CHECK_ALLOW_CPU=1 (no GPU: a CPU-only dry run), GPUCHECK_STEPS (training steps, default 300).
EOF

# 4. gzip the binaries (≈100 MiB → ≈40): gpu-check.sh unpacks them next to the .gz on first use.
raw_kib=$(du -sk "$out" | cut -f1)
find "$out/pkg" -name '*.test' -type f -exec gzip -9 {} +
size_kib=$(du -sk "$out" | cut -f1)
say "bundle $out: $((size_kib / 1024)) MiB ($((raw_kib / 1024)) MiB unpacked); binaries need glibc >= ${glibc#GLIBC_}"
if ((size_kib > limit_mib * 1024)); then
	die "the bundle is over ${limit_mib} MiB"
fi
echo "$out"
