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
  # make check-vm: a full-system arm64 machine with MTE. qemu-system-arm
  # comes from bookworm-backports (pinned below; bookworm's 7.2 gets MTE
  # wrong in system mode) and drags qemu-user to the same version.
  qemu-system-arm
  cpio               # the guest's initramfs (newc)
)
# The oldest qemu-system-arm check-vm accepts (MTE-KERNEL-FACTS.md).
QEMU_MIN_VERSION=1:10.0.2
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

# bookworm-backports as an apt source, and a pin that takes the QEMU
# packages from it and nothing else: every other package stays on bookworm
# (priority 1: a backports version is never an upgrade of an installed
# package; it is a candidate only where bookworm has no such package at all,
# which is how scripts/vm/fetch downloads the arm64 kernel). Files are
# rewritten only when their content differs, so a second run changes
# nothing and does not need apt-get update.
BACKPORTS_SOURCE=/etc/apt/sources.list.d/tagmem-backports.sources
BACKPORTS_PIN=/etc/apt/preferences.d/tagmem-backports
QEMU_BACKPORTS_PKGS="qemu-system-arm qemu-system-common qemu-system-data qemu-system-gui qemu-user qemu-utils qemu-block-extra"
apt_changed=0

# Write stdin to $1 unless it already holds exactly that; note the change.
put_file() {
  local want
  want=$(cat)
  if [ -f "$1" ] && [ "$(cat "$1")" = "$want" ]; then
    return 0
  fi
  echo "deps: writing $1"
  printf '%s\n' "$want" | $SUDO tee "$1.tmp" >/dev/null
  $SUDO mv -f "$1.tmp" "$1"
  apt_changed=1
}

backports() {
  put_file "$BACKPORTS_SOURCE" <<EOT
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOT
  put_file "$BACKPORTS_PIN" <<EOT
Package: $QEMU_BACKPORTS_PKGS
Pin: release n=bookworm-backports
Pin-Priority: 990

Package: *
Pin: release n=bookworm-backports
Pin-Priority: 1
EOT
}

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
backports

missing=()
for p in "${NATIVE_PKGS[@]}" "${CROSS_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# An installed bookworm QEMU (7.2) is not enough: upgrade it through the pin.
v=$(dpkg-query -W -f='${Version}' qemu-system-arm 2>/dev/null || true)
if [ -n "$v" ] && ! dpkg --compare-versions "$v" ge "$QEMU_MIN_VERSION"; then
  missing+=(qemu-system-arm)
fi
if [ ${#missing[@]} -eq 0 ]; then
  # new apt configuration: refresh the lists so the pin and source take effect
  [ "$apt_changed" = 1 ] && $SUDO apt-get update -qq
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
apt_changed=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
judy_arm64
