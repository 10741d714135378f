#!/usr/bin/env bash
# Checks save_value.cpp, the reference for the shim entry TorchStateDict needs: builds it
# against Debian's libtorch (build/optim/save_value), has Go write every kind's TorchStateDict
# as the streams a C writer takes, writes each as a torch.save file with the program, and checks
# with Python that torch.optim loads them and steps as Go does. Run from the repository root:
# bridge/optim/testdata/save_value.sh
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p build/optim
if [ ! build/optim/save_value -nt bridge/optim/testdata/save_value.cpp ]; then
	g++ -O1 -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -I/usr/include -I/usr/include/torch/csrc/api/include \
		bridge/optim/testdata/save_value.cpp -o build/optim/save_value -Wl,--no-as-needed -ltorch -ltorch_cpu -lc10
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
HOTCB_TORCH_VALUE_DIR="$dir" go test ./bridge/optim/ -run '^TestWriteTorchValueFiles$' -count=1 >/dev/null
for d in "$dir"/*/; do
	build/optim/save_value "$d"
done
/usr/bin/python3 bridge/optim/testdata/save_value_check.py "$dir"
