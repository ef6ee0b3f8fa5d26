#!/bin/bash
# Install the Debian packages tagmem needs to build and test, and nothing
# else. Idempotent: asks dpkg first and only calls apt-get for what is missing,
# so a machine that has everything never touches the network.
set -euo pipefail

NATIVE_PKGS=(
  meson ninja-build pkg-config gcc libc6-dev clang
  libcmocka-dev      # unit-test harness (prints passed/failed counts)
  libzstd-dev        # page-data and tag-packet compression
  libxxhash-dev      # packet and chunk checksums (XXH3)
  "libjudy-dev:$(dpkg --print-architecture)"  # sparse tag store keyed by swap slot
  # (arch-qualified: an arm64 libjudy-dev would otherwise answer for it)
  qemu-user          # runs aarch64 tests with real MTE (-cpu max)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  gdb-multiarch      # real client for our ELF core dumps
  gnuplot-nox        # storage-sim plots
  libclang-rt-14-dev # libFuzzer + sanitizer runtimes for clang
)
CROSS_PKGS=(libcmocka-dev:arm64 libzstd-dev:arm64 libxxhash-dev:arm64)
# libjudy-dev (swap's tag store) is not Multi-Arch: same in Debian, so
# libjudy-dev:arm64 cannot be installed next to the native libjudy-dev: apt
# replaces one with the other (seen: installing :arm64 removed the amd64
# package and broke native builds). Instead the arm64 package's static
# library and header are unpacked, outside dpkg, under this root, which
# cross/aarch64-linux-gnu.ini names as judy_root.
JUDY_ARM64_ROOT=/opt/tagmem-cross/judy-arm64
JUDY_ARM64_PKG=libjudy-dev:arm64

# Unpack libjudy-dev:arm64 under JUDY_ARM64_ROOT unless it is there already.
judy_arm64() {
  local tmp deb
  [ -f "$JUDY_ARM64_ROOT/usr/lib/aarch64-linux-gnu/libJudy.a" ] && return 0
  echo "deps: unpacking $JUDY_ARM64_PKG under $JUDY_ARM64_ROOT"
  tmp=$(mktemp -d)
  # (apt warns that it downloads unsandboxed as root into a private dir: harmless)
  (cd "$tmp" && apt-get download -qq "$JUDY_ARM64_PKG")
  deb=$(ls "$tmp"/libjudy-dev_*_arm64.deb)
  $SUDO mkdir -p "$JUDY_ARM64_ROOT"
  $SUDO dpkg-deb -x "$deb" "$JUDY_ARM64_ROOT"
  rm -rf "$tmp"
}

missing=()
for p in "${NATIVE_PKGS[@]}" "${CROSS_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
if [ ${#missing[@]} -eq 0 ]; then
  judy_arm64
  echo "deps: all present"
  exit 0
fi
echo "deps: installing ${missing[*]}"
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $SUDO dpkg --add-architecture arm64
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
judy_arm64
