#!/usr/bin/env python3
"""check_symbols.py - the library exports exactly its public API.

Three checks, each failing with the names at fault:

  headers  every public header (include/tagmem/*.h) compiles on its own
           with only the include directory on the path (self-contained;
           tagmem/tagmem.h, all of them, also as C++ when --cxx is given),
           and every function it declares carries TM_API. The declarations
           come from the compiler itself (gcc -aux-info), not from a regex
           over the text, so a multi-line or attribute-laden declaration
           cannot slip through.
  shared   the dynamic symbols libtagmem.so defines are exactly the
           functions the headers declare: a declaration without TM_API
           (missing from the .so) or an internal function exported by
           mistake (in the .so, in no header) fails, and so does any
           exported symbol that does not start with tm_.
  static   every global symbol libtagmem.a defines starts with tm_ (the
           internal ones are hidden in the .so but a static link still sees
           them, so they must not collide with a caller's names).

usage: check_symbols.py --cc CC... --include DIR --nm NM --shared LIB.so
                        --static LIB.a [--pending PREFIX=WHY ...]
                        [--forbid PREFIX=WHY ...]

--forbid PREFIX=WHY fails on any static-library symbol with that prefix (code
that must stay out of the library, e.g. the demo workload).

--pending names a prefix of static-library symbols whose rename is known
to be in progress in another part (printed, not failed). It fails as soon
as no symbol has that prefix any more, so the exception cannot outlive the
rename.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, **kw)
    if p.returncode != 0:
        sys.exit("check_symbols: %s failed (%d):\n%s%s" %
                 (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def public_headers(incdir):
    d = os.path.join(incdir, "tagmem")
    hs = sorted(f for f in os.listdir(d) if f.endswith(".h"))
    if not hs:
        sys.exit("check_symbols: no headers in %s" % d)
    return [os.path.join(d, h) for h in hs]


def declarations(cc, incdir, header, tmp, anywhere=False):
    """(name, line) of every non-static function header declares itself
    (anywhere: or any public header it includes)."""
    src = os.path.join(tmp, "one.c")
    aux = os.path.join(tmp, "one.aux")
    with open(src, "w") as f:
        f.write("#include <tagmem/%s>\n" % os.path.basename(header))
    run(cc + ["-std=c11", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
              "-I", incdir, "-aux-info", aux, src])
    real = os.path.realpath(header)
    out = []
    with open(aux) as f:
        for line in f:
            m = re.match(r"/\* (.+):(\d+):\S+ \*/ (.*)$", line)
            if not m:
                continue
            where = os.path.realpath(m.group(1))
            if where != real and not (anywhere and
                                      os.path.dirname(where) == os.path.dirname(real)):
                continue
            decl = m.group(3)
            if not decl.startswith("extern "):
                continue        # static inline helpers are not exported
            name = re.search(r"(\w+) \(", decl)
            out.append((name.group(1), int(m.group(2))))
    return out


def check_tm_api(header, decls):
    lines = open(header).read().split("\n")
    bad = []
    for name, ln in decls:
        # TM_API goes before the return type, on the declaration's first line.
        text = lines[ln - 1]
        head = text[:text.find(name)] if name in text else text
        if not re.search(r"\bTM_API\b", head):
            bad.append("%s:%d: %s is declared without TM_API" %
                       (os.path.basename(header), ln, name))
    return bad


def defined_symbols(nm, lib, dynamic):
    cmd = [nm, "--defined-only"] + (["-D"] if dynamic else ["-g"]) + [lib]
    syms = {}
    member = os.path.basename(lib)
    for line in run(cmd).split("\n"):
        if line.endswith(":") and not line.startswith(" "):
            member = line[:-1]
            continue
        f = line.split()
        if len(f) == 3 and f[1] not in "UwvN":
            syms.setdefault(f[2].split("@")[0], member)
    return syms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cc", required=True, nargs="+")
    ap.add_argument("--include", required=True)
    ap.add_argument("--nm", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--static", required=True)
    ap.add_argument("--cxx", nargs="+", default=[],
                    help="a C++ compiler: tagmem/tagmem.h must compile as C++ too")
    ap.add_argument("--pending", action="append", default=[])
    ap.add_argument("--forbid", action="append", default=[])
    a = ap.parse_args()

    fails = []
    declared = {}
    with tempfile.TemporaryDirectory() as tmp:
        for h in public_headers(a.include):
            d = declarations(a.cc, a.include, h, tmp)
            fails += check_tm_api(h, d)
            for name, ln in d:
                declared[name] = "%s:%d" % (os.path.basename(h), ln)
        # The umbrella header must bring in every other public header.
        umbrella = os.path.join(a.include, "tagmem", "tagmem.h")
        if os.path.exists(umbrella):
            have = set(n for n, _ in declarations(a.cc, a.include, umbrella, tmp,
                                                  anywhere=True))
            missing = sorted(set(declared[n].split(":")[0] for n in set(declared) - have))
            for h in missing:
                fails.append("tagmem/tagmem.h does not include tagmem/%s" % h)
        else:
            fails.append("include/tagmem/tagmem.h is missing")
        if a.cxx and os.path.exists(umbrella):
            # VMMs and tools written in C++ include the same headers.
            src = os.path.join(tmp, "cxx.cc")
            with open(src, "w") as f:
                f.write("#include <tagmem/tagmem.h>\nunsigned v() { return tm_version_number(); }\n")
            p = subprocess.run(a.cxx + ["-std=c++17", "-Wall", "-Wextra", "-Werror",
                                        "-fsyntax-only", "-I", a.include, src],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
            if p.returncode:
                fails.append("tagmem/tagmem.h does not compile as C++:\n" + p.stdout)
    if len(declared) < 50:
        fails.append("only %d public functions found: the header parse is broken"
                     % len(declared))

    exported = defined_symbols(a.nm, a.shared, dynamic=True)
    for s in sorted(exported):
        if not s.startswith("tm_"):
            fails.append("libtagmem.so exports %s, which is not a tm_ name" % s)
        elif s not in declared:
            fails.append("libtagmem.so exports %s, declared in no public header "
                         "(an internal function without hidden visibility?)" % s)
    for s in sorted(declared):
        if s not in exported:
            fails.append("%s declares %s but libtagmem.so does not export it "
                         "(missing TM_API, or no definition)" % (declared[s], s))

    pending = dict(p.split("=", 1) for p in a.pending)
    forbid = dict(f.split("=", 1) for f in a.forbid)
    seen = {p: 0 for p in pending}
    for s, member in sorted(defined_symbols(a.nm, a.static, dynamic=False).items()):
        bad = next((f for f in forbid if s.startswith(f)), None)
        if bad:
            fails.append("libtagmem.a (%s) defines %s: %s" % (member, s, forbid[bad]))
            continue
        # ASan adds an ODR indicator per global variable: __odr_asan.<name>.
        if s.startswith("tm_") or s.startswith("__odr_asan.tm_"):
            continue
        pre = next((p for p in pending if s.startswith(p)), None)
        if pre:
            seen[pre] += 1
            continue
        fails.append("libtagmem.a (%s) defines global %s, not a tm_ name "
                     "(rename it tm_<part>_... or make it static)" % (member, s))
    for p, n in seen.items():
        if n:
            print("pending: %d global %s* symbols in libtagmem.a (%s)" % (n, p, pending[p]))
        else:
            fails.append("no %s* symbol is left: remove --pending %s from "
                         "tests/pkg/meson.build" % (p, p))

    print("public functions declared: %d, exported by libtagmem.so: %d" %
          (len(declared), len(exported)))
    if fails:
        print("\n".join("FAIL: " + f for f in fails))
        return 1
    print("ok: libtagmem.so exports exactly the public API; libtagmem.a defines only tm_ names")
    return 0


if __name__ == "__main__":
    sys.exit(main())
