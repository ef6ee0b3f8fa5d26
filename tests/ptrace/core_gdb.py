#!/usr/bin/python3
"""ptrace_core_gdb: gdb-multiarch reads the MTE tags of a live process's core.

Runs tests/ptrace/test_ptrace_core where a real MTE kernel is (on this host
if it is arm64, else in the test VM through scripts/vm/run-in-vm), which
leaves in one directory: tagmem.core (tm_ptrace_core_write of the live
process), kernel.core (the kernel's core of the same, unchanged process)
and samples.txt ("ADDR TAG": granules and the tag the process itself read
there with LDG). Then, for both cores, `memory-tag print-allocation-tag
ADDR` in gdb-multiarch must print that tag for every sample.

gdb does not run in the guest (busybox userland), so make check-vm runs
this on the host (scripts/vm/check-vm ON_HOST). Exit 0 pass, 1 fail, 77
skip (with a "SKIP: why" line) when gdb-multiarch or the VM is missing and
TAGMEM_REQUIRE does not list core-dump.
"""
import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile


def skip_or_fail(why):
    req = os.environ.get("TAGMEM_REQUIRE", "")
    if "all" in req.split(",") or "core-dump" in req.split(","):
        print("FAIL: %s (TAGMEM_REQUIRE lists core-dump)" % why)
        sys.exit(1)
    print("SKIP: %s" % why)
    sys.exit(77)


def produce(a, out):
    env = {"TM_PTRACE_TARGET": a.target, "TM_PTRACE_CORE_OUT": out,
           "CMOCKA_MESSAGE_OUTPUT": "stdout", "TAGMEM_REQUIRE": "mte,ptrace,core-dump"}
    if platform.machine() == "aarch64":
        e = dict(os.environ, **env)
        return subprocess.run([a.test], env=e, cwd=a.build).returncode
    if not shutil.which("qemu-system-aarch64"):
        skip_or_fail("qemu-system-aarch64 is not installed (scripts/deps.sh)")
    cmd = [a.run_in_vm, "--timeout", "240", "--out", out]
    for k, v in env.items():
        cmd += ["--env", "%s=%s" % (k, "/vm/out" if k == "TM_PTRACE_CORE_OUT" else v)]
    cmd += [a.build, "--", a.test]
    return subprocess.run(cmd).returncode


def gdb_tags(gdb, core, addrs):
    cmd = [gdb, "-batch", "-nx", "-ex", "core-file " + core]
    for x in addrs:
        cmd += ["-ex", "memory-tag print-allocation-tag " + x]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got = [int(m.group(1), 16) for m in re.finditer(r"^\$\d+ = 0x([0-9a-f]+)$", r.stdout, re.M)]
    return got, r.stdout


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", required=True)
    p.add_argument("--test", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--run-in-vm", required=True)
    a = p.parse_args()
    gdb = shutil.which("gdb-multiarch")
    if not gdb:
        skip_or_fail("gdb-multiarch is not installed (scripts/deps.sh)")
    out = tempfile.mkdtemp(prefix="tm-ptrace-gdb-")
    try:
        rc = produce(a, out)
        if rc != 0:
            print("FAIL: test_ptrace_core exited with %d" % rc)
            return 1
        with open(os.path.join(out, "samples.txt")) as f:
            samples = [l.split() for l in f if l.strip()]
        if len(samples) < 10:
            print("FAIL: only %d samples" % len(samples))
            return 1
        addrs = [s[0] for s in samples]
        want = [int(s[1]) for s in samples]
        bad = 0
        for core in ("tagmem.core", "kernel.core"):
            got, text = gdb_tags(gdb, os.path.join(out, core), addrs)
            if len(got) != len(want):
                print("FAIL: %s: gdb printed %d tags for %d addresses:\n%s"
                      % (core, len(got), len(want), text[-2000:]))
                bad += 1
                continue
            wrong = [(x, w, g) for x, w, g in zip(addrs, want, got) if w != g]
            for x, w, g in wrong[:10]:
                print("FAIL: %s: tag at %s is 0x%x in gdb, the process set 0x%x" % (core, x, g, w))
            bad += bool(wrong)
            print("%s: gdb-multiarch read %d allocation tags, %d differ from the process's own"
                  % (core, len(got), len(wrong)))
        nonzero = sum(1 for w in want if w)
        print("samples: %d granules, %d with a non-zero tag" % (len(want), nonzero))
        return 1 if bad or nonzero == 0 else 0
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
