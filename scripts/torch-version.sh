#!/usr/bin/env bash
# torch-version.sh TORCH_INCLUDE: prints the libtorch version of those headers (major.minor.patch),
# or nothing when there are none. The defines moved to torch/headeronly/version.h in 2.x.
inc=$1
for f in "$inc/torch/headeronly/version.h" "$inc/torch/csrc/api/include/torch/version.h"; do
	[[ -f $f ]] || continue
	v=$(sed -n 's/^#define TORCH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\).*/\2/p' "$f" | paste -sd.)
	if [[ -n $v ]]; then
		echo "$v"
		exit 0
	fi
done
