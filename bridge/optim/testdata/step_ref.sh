#!/usr/bin/env bash
# Builds step_ref.cpp against Debian's libtorch (build/optim/step_ref) and prints, for 1 and 2
# intra-op threads, µs per optimizer step from C++, from Python's torch.optim, and from Go
# (BenchmarkStepMLP). Run from the repository root: bridge/optim/testdata/step_ref.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/optim
if [ ! build/optim/step_ref -nt bridge/optim/testdata/step_ref.cpp ]; then
	g++ -O2 -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -I/usr/include -I/usr/include/torch/csrc/api/include \
		bridge/optim/testdata/step_ref.cpp -o build/optim/step_ref -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10
fi
for th in 1 2; do
	OMP_NUM_THREADS=$th build/optim/step_ref "$th"
	OMP_NUM_THREADS=$th /usr/bin/python3 bridge/optim/testdata/step_ref.py "$th"
done
go test ./bridge/optim/ -run '^$' -bench 'StepMLP' -benchtime 2000x -count 5
