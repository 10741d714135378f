#!/usr/bin/env bash
# check-cxx.sh CXX STD TORCH_INCLUDE: fails with a clear message when the C++ standard the build
# uses is too old for the libtorch headers in TORCH_INCLUDE (libtorch >= 2.14 needs C++20).
set -euo pipefail
cxx=$1 std=$2 inc=$3
ver=$("$(dirname "$0")/torch-version.sh" "$inc")
[[ -n $ver ]] || exit 0 # no libtorch there: the compile will say so
IFS=. read -r major minor _ <<<"$ver"
if [[ $std != c++20 && $std != c++2* && ( $major -gt 2 || ( $major -eq 2 && $minor -ge 14 ) ) ]]; then
	if echo 'int main(){}' | "$cxx" -std=c++20 -x c++ -fsyntax-only - >/dev/null 2>&1; then
		echo "libtorch $major.$minor needs C++20, but the build uses -std=$std: unset CXX_STD (the Makefile picks c++20 when '$cxx' has it)" >&2
	else
		echo "libtorch $major.$minor needs C++20, but the compiler '$cxx' ($("$cxx" --version | head -1)) does not take -std=c++20: install g++ 10 or newer (or clang 10+) and pass CXX=..." >&2
	fi
	exit 1
fi
