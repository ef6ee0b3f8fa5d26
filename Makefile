# Thin wrapper over Meson + Ninja. The build directories:
#   build/          native, -Werror            (make, make demo)
#   build-asan/     native, ASan + UBSan       (make check)
#   build-aarch64/  arm64 cross (full), run under qemu-aarch64 -cpu max (make check)
#                   and on a real arm64 kernel with MTE under qemu-system-aarch64
#                   (make check-vm; kernel, busybox, initramfs cached in build/vm/)
#   build-fuzz/     clang + libFuzzer          (make check: short fixed run)
MESON ?= meson
NINJA ?= ninja
FUZZ_SECONDS ?= 15
PREFIX ?= /usr/local
DESTDIR ?=

.PHONY: all deps check check-native check-asan check-aarch64 check-vm check-fuzz \
	build-aarch64-all demo bench install clean

all: build/build.ninja
	$(NINJA) -C build

build/build.ninja:
	$(MESON) setup build --werror

deps:
	./scripts/deps.sh

# Every step runs even when one fails, then one summary per cmocka case
# (scripts/test-summary: counts per build, every skip with its reason,
# every failure); the exit status says whether any step failed.
CHECK_STEPS = check-native check-asan check-aarch64 check-vm check-fuzz
check: deps
	@start=$$(date +%s); failed=; \
	for step in $(CHECK_STEPS); do \
	  $(MAKE) --no-print-directory $$step || failed="$$failed $$step"; \
	done; \
	./scripts/test-summary --since $$start native=build asan=build-asan \
	  aarch64=build-aarch64 vm=build/vm/results.json || true; \
	if [ -n "$$failed" ]; then echo "make check: FAILED:$$failed"; exit 1; fi; \
	echo "make check: all suites passed"

check-native: build/build.ninja
	$(NINJA) -C build
	$(MESON) test -C build --print-errorlogs --num-processes 2

build-asan/build.ninja:
	$(MESON) setup build-asan --werror -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug -Doptimization=1

check-asan: build-asan/build.ninja
	$(NINJA) -C build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  $(MESON) test -C build-asan --print-errorlogs --num-processes 2 --timeout-multiplier 3

# The whole library is cross-built (so every part must build for arm64), but
# only the suites that make sense under qemu-user run: it has no userfaultfd,
# soft-dirty or pagemap, which migrate/swap/snapshot/storage tests need. The
# mte suite includes live migration between two mte regions under real tag
# checks (tests/mte/test_migrate_mte.c); pkg checks the arm64 libtagmem.so
# exports exactly the public API.
AARCH64_SUITES = --suite common --suite tags --suite region --suite mte --suite pkg

build-aarch64/build.ninja:
	$(MESON) setup build-aarch64 --werror --cross-file cross/aarch64-linux-gnu.ini

build-aarch64-all: build-aarch64/build.ninja
	$(MESON) configure build-aarch64 -Dfull=true   # a dir set up before the switch was full=false
	$(NINJA) -C build-aarch64

check-aarch64: build-aarch64-all
	$(MESON) test -C build-aarch64 $(AARCH64_SUITES) --print-errorlogs --num-processes 2 --timeout-multiplier 4

# The same arm64 executables on a real kernel (Debian's 6.12 arm64, MTE,
# userfaultfd, KVM) in one qemu-system-aarch64 guest: every test of the
# suites below from `meson introspect --tests`, per-case results in
# build/vm/results.json, last line "N passed, N failed, N skipped". The
# guest has uffd, uffd-wp and PAGEMAP_SCAN, so the suites the qemu-user run
# leaves out run here. See docs/parts/vm.md; scripts/vm/run-in-vm runs any
# one command there.
VM_SUITES ?= mte,region,migrate,swap,snapshot,kvm,vm,tags,common,storage
VM_TIMEOUT ?= 1200
check-vm: deps build-aarch64-all
	VM_SUITES=$(VM_SUITES) VM_TIMEOUT=$(VM_TIMEOUT) ./scripts/vm/check-vm

build-fuzz/build.ninja:
	CC=clang $(MESON) setup build-fuzz -Dfuzz=true -Dtests=false -Db_lundef=false -Dbuildtype=debugoptimized

check-fuzz: build-fuzz/build.ninja
	$(NINJA) -C build-fuzz
	./scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

demo: all
	./build/tools/tagmem demo

# Boots the test VM (scripts/vm/run-in-vm: arm64 6.12 with MTE, nested KVM)
# and, in it, live-migrates the running MTE guest of examples/vmm from one
# tm-vmm process to another, then snapshots it and restores it into a fresh
# one: one JSON object per step (verified, downtime_ms, total_ms, pages,
# tag_bytes_wire; docs/parts/kvm.md). Fails unless both steps verified.
demo-kvm: build-aarch64/build.ninja
	$(MESON) configure build-aarch64 -Dfull=true
	$(NINJA) -C build-aarch64 examples/vmm/tm-vmm examples/vmm/tm-guest.elf
	./scripts/vm/run-in-vm --kvm --timeout 600 build-aarch64 -- sh -c \
	  'examples/vmm/tm-vmm migrate-demo; a=$$?; examples/vmm/tm-vmm snapshot-demo /tmp/tm-demo.snap; b=$$?; exit $$((a | b))'

# Every benchmark, one JSON object per line (each measures its own baseline
# in the same run; see docs/BENCHMARKS.md).
BENCHES ?= tags migrate swap snapshot storage
bench: all
	@for b in $(BENCHES); do ./build/tools/tagmem bench $$b --json || exit 1; done

# make install [PREFIX=/usr] [DESTDIR=/tmp/stage]: headers, libtagmem.a,
# libtagmem.so.0, tagmem.pc, the tagmem CLI and its man page, from build/
# (reconfigured for PREFIX; meson puts libraries in PREFIX/lib/<multiarch>
# on Debian).
install: build/build.ninja
	$(MESON) configure build -Dprefix=$(PREFIX)
	$(NINJA) -C build
	$(MESON) install -C build --no-rebuild $(if $(DESTDIR),--destdir "$(DESTDIR)")

clean:
	rm -rf build build-asan build-aarch64 build-fuzz
