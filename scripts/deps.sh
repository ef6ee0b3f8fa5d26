#!/bin/bash
# Install the Debian packages tagmem needs to build and test, and nothing
# else. Idempotent: asks dpkg first and only calls apt-get for what is missing,
# so a machine that has everything never touches the network.
set -euo pipefail

NATIVE_PKGS=(
  meson ninja-build pkg-config gcc clang
  libcmocka-dev      # unit-test harness (prints passed/failed counts)
  libzstd-dev        # page-data and tag-packet compression
  libxxhash-dev      # packet and chunk checksums (XXH3)
  libjudy-dev        # sparse tag store keyed by swap slot
  qemu-user          # runs aarch64 tests with real MTE (-cpu max)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gdb-multiarch      # real client for our ELF core dumps
  gnuplot-nox        # storage-sim plots
  libclang-rt-14-dev # libFuzzer + sanitizer runtimes for clang
)
CROSS_PKGS=(libcmocka-dev:arm64 libzstd-dev:arm64 libxxhash-dev:arm64)

missing=()
for p in "${NATIVE_PKGS[@]}" "${CROSS_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
