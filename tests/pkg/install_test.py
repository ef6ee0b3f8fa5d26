#!/usr/bin/env python3
"""install_test.py - install tagmem into a temporary root and build a caller.

What a packager and a VMM author do, in order, each step failing with what
went wrong:

  1. `meson install --destdir TMP` of the build directory;
  2. the installed tree is complete and nothing more: every public header
     and no other (no src/ header), libtagmem.a, libtagmem.so ->
     libtagmem.so.0 -> libtagmem.so.<version> with SONAME libtagmem.so.0,
     tagmem.pc, the tagmem CLI, and its man page and bash completion once
     the source has them (tools/tagmem.1, tools/tagmem.bash);
  3. tests/pkg/consumer.c is compiled with
     `pkg-config --cflags --libs tagmem` against the installed tree only
     (PKG_CONFIG_SYSROOT_DIR=TMP, the way staged installs are consumed):
     it must NEED libtagmem.so.0, resolve it inside TMP, and print the
     expected lines;
  4. the same program linked fully static with `pkg-config --static`
     (this is what Requires.private/Libs.private are for: zstd, xxhash,
     Judy, pthread, m): no dynamic section at all, same output.

usage: install_test.py --build DIR --meson MESON... --version V
         --prefix P --libdir L --includedir I --bindir B --mandir M --datadir D
         --cc CC... --source consumer.c --readelf READELF
         [--man PATH_IN_SOURCE] [--completion NAME] [--pc-libdir DIRS]
         [--ldflags FLAG]
         [--run WRAPPER... --run-env-flag FLAG]
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


class Fail(Exception):
    pass


def run(cmd, env=None, want_rc=0):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, env=env)
    if want_rc is not None and p.returncode != want_rc:
        raise Fail("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode,
                                              p.stdout, p.stderr))
    return p.stdout


def rel(d):
    return d.lstrip("/")


def check_tree(a, root):
    pre = os.path.join(root, rel(a.prefix))
    inc = os.path.join(pre, a.includedir)
    lib = os.path.join(pre, a.libdir)
    src_hdrs = sorted(f for f in os.listdir(os.path.join(a.source_root, "include", "tagmem"))
                      if f.endswith(".h"))
    if sorted(os.listdir(inc)) != ["tagmem"]:
        raise Fail("%s holds %s; only tagmem/ belongs there" % (inc, sorted(os.listdir(inc))))
    got = sorted(os.listdir(os.path.join(inc, "tagmem")))
    if got != src_hdrs:
        raise Fail("installed headers %s differ from include/tagmem %s" % (got, src_hdrs))
    major = a.version.split(".")[0]
    so, so_major, so_full = ("libtagmem.so", "libtagmem.so." + major,
                             "libtagmem.so." + a.version)
    for name in ["libtagmem.a", so, so_major, so_full, "pkgconfig/tagmem.pc"]:
        if not os.path.exists(os.path.join(lib, name)):
            raise Fail("%s was not installed in %s" % (name, lib))
    if os.readlink(os.path.join(lib, so)) != so_major or \
       os.readlink(os.path.join(lib, so_major)) != so_full:
        raise Fail("%s -> %s -> %s chain is wrong" % (so, so_major, so_full))
    dyn = run([a.readelf, "-d", os.path.join(lib, so_full)])
    if "Library soname: [%s]" % so_major not in dyn:
        raise Fail("SONAME of %s is not %s:\n%s" % (so_full, so_major, dyn))
    if not os.access(os.path.join(pre, a.bindir, "tagmem"), os.X_OK):
        raise Fail("the tagmem CLI was not installed in %s" % os.path.join(pre, a.bindir))
    if a.man:
        page = os.path.join(pre, a.mandir, "man1", os.path.basename(a.man))
        if not os.path.exists(page):
            raise Fail("the man page %s was not installed as %s" % (a.man, page))
    if a.completion:
        comp = os.path.join(pre, a.datadir, "bash-completion", "completions", a.completion)
        if not os.path.exists(comp):
            raise Fail("the bash completion was not installed as %s" % comp)
    return lib


def pkg_config(a, root, args):
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.path.join(root, rel(a.prefix), a.libdir, "pkgconfig")
    env["PKG_CONFIG_SYSROOT_DIR"] = root
    if a.pc_libdir:
        env["PKG_CONFIG_LIBDIR"] = a.pc_libdir
    return run([a.pkg_config] + args + ["tagmem"], env=env).split()


def run_consumer(a, exe, libdir, trace=False):
    """Run exe with only the installed libdir on the library path."""
    env = dict(os.environ)
    env.pop("LD_LIBRARY_PATH", None)    # meson test points it at the build tree
    guest = {"LD_LIBRARY_PATH": libdir}
    if trace:
        guest["LD_TRACE_LOADED_OBJECTS"] = "1"
    if a.run:
        # Cross: the guest's environment goes through the wrapper; the cross
        # libc stays first after ours, as in cross/aarch64-linux-gnu.ini.
        guest["LD_LIBRARY_PATH"] += ":/usr/aarch64-linux-gnu/lib"
        cmd = shlex.split(a.run)
        for k, v in guest.items():
            cmd += [a.run_env_flag, "%s=%s" % (k, v)]
        return run(cmd + [exe], env=env)
    env.update(guest)
    return run([exe], env=env)


def expected(a):
    n = int(a.version.split(".")[0]) * 10000 + int(a.version.split(".")[1]) * 100 + \
        int(a.version.split(".")[2])
    return ("headers %s (%d), library %s (%d)\n" % (a.version, n, a.version, n) +
            "page 2 of b: tagged 1, granule 0 tag 1, granule 254 tag 15\n"
            "digests equal\n")


def build_and_run(a, root, libdir, static):
    tmp = os.path.join(root, "consumer")
    os.makedirs(tmp, exist_ok=True)
    exe = os.path.join(tmp, "consumer-static" if static else "consumer-shared")
    cflags = pkg_config(a, root, ["--cflags"] + (["--static"] if static else []))
    libs = pkg_config(a, root, ["--libs"] + (["--static"] if static else []))
    if any("/src" in f for f in cflags):
        raise Fail("pkg-config --cflags names a src/ directory: %s" % cflags)
    run(a.cc + ["-std=c11", "-Wall", "-Wextra", "-Werror"] + (["-static"] if static else []) +
        cflags + ["-o", exe, a.consumer] + a.ldflags + libs)
    dyn = run([a.readelf, "-d", exe], want_rc=None)
    if static:
        if "NEEDED" in dyn:
            raise Fail("the --static consumer still needs shared libraries:\n" + dyn)
    else:
        if "Shared library: [libtagmem.so.%s]" % a.version.split(".")[0] not in dyn:
            raise Fail("the shared consumer does not NEED libtagmem.so.0:\n" + dyn)
        trace = run_consumer(a, exe, libdir, trace=True)
        line = [l for l in trace.split("\n") if "libtagmem.so" in l]
        if not line or os.path.realpath(libdir) not in line[0]:
            raise Fail("libtagmem.so.0 did not resolve inside %s:\n%s" % (libdir, trace))
    out = run_consumer(a, exe, libdir)
    if out != expected(a):
        raise Fail("%s printed:\n%swanted:\n%s" % (exe, out, expected(a)))
    print("ok: %s consumer (%s): %s" % ("static" if static else "shared",
                                       " ".join(libs), out.split("\n")[0]))


def main():
    ap = argparse.ArgumentParser()
    for opt in ["build", "version", "prefix", "libdir", "includedir", "bindir",
                "mandir", "datadir", "consumer", "readelf", "pkg-config", "source-root"]:
        ap.add_argument("--" + opt, required=True)
    ap.add_argument("--meson", required=True, nargs="+")
    ap.add_argument("--cc", required=True, nargs="+")
    ap.add_argument("--man", default="")
    ap.add_argument("--completion", default="",
                    help="name expected in share/bash-completion/completions")
    ap.add_argument("--pc-libdir", default="")
    ap.add_argument("--run", default="", help="wrapper command line (split like a shell)")
    ap.add_argument("--run-env-flag", default="-E")
    ap.add_argument("--ldflags", action="append", default=[])
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    if a.skip:
        print("SKIP: " + a.skip)
        return 77
    root = tempfile.mkdtemp(prefix="tagmem-install-")
    try:
        run(a.meson + ["install", "-C", a.build, "--no-rebuild", "--quiet",
                       "--destdir", root])
        libdir = check_tree(a, root)
        print("ok: installed tree under %s" % root)
        build_and_run(a, root, libdir, static=False)
        build_and_run(a, root, libdir, static=True)
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
