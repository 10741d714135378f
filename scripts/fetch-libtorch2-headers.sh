#!/usr/bin/env bash
# Downloads (does not install) a Debian suite's libtorch-dev and the header packages it needs, and
# unpacks them under $1 (default build/libtorch2) for a compile-only check of cpp/. $2 is the
# suite (default trixie, libtorch 2.6; sid has the newest, 2.14 in 2026-11). Uses a private apt
# state so the machine's own apt configuration is untouched; a second run with the same
# destination downloads nothing (CI calls it once per suite). Prints the unpacked root.
set -euo pipefail
dest=${1:-build/libtorch2}
suite=${2:-trixie}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
apt_root="$dest/apt"
mkdir -p "$apt_root/lists/partial" "$apt_root/cache/archives/partial" "$apt_root/etc/preferences.d" "$apt_root/debs"
cat > "$apt_root/etc/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main
SRC
opts=(-o "Dir::Etc::SourceList=$apt_root/etc/sources.list" -o "Dir::Etc::SourceParts=-"
      -o "Dir::Etc::Preferences=$apt_root/etc/preferences" -o "Dir::Etc::PreferencesParts=$apt_root/etc/preferences.d"
      -o "Dir::State::Lists=$apt_root/lists" -o "Dir::Cache=$apt_root/cache" -o "APT::Get::List-Cleanup=0"
      -o "Debug::NoLocking=1")
if [ ! -f "$dest/.unpacked" ]; then
  apt-get "${opts[@]}" -qq update
  cd "$apt_root/debs"
  # libtorch-dev holds the ATen/c10/torch headers; the rest are headers they include
  # (libgloo-dev: c10d's ProcessGroupGloo.hpp, for cpp/dist.cpp).
  for pkg in libtorch-dev libc10-dev libgloo-dev; do
    apt-get "${opts[@]}" -qq download "$pkg" 2>/dev/null || true
  done
  ls ./*.deb >/dev/null
  for deb in ./*.deb; do dpkg-deb -x "$deb" "$dest/root"; done
  touch "$dest/.unpacked" "$dest/.unpacked-gloo"
elif [ ! -f "$dest/.unpacked-gloo" ]; then
  # Unpacked before Gloo's headers were needed: add them.
  apt-get "${opts[@]}" -qq update
  cd "$apt_root/debs"
  apt-get "${opts[@]}" -qq download libgloo-dev 2>/dev/null || true
  for deb in ./libgloo-dev_*.deb; do [ -f "$deb" ] && dpkg-deb -x "$deb" "$dest/root"; done
  touch "$dest/.unpacked-gloo"
fi
echo "$dest/root"
