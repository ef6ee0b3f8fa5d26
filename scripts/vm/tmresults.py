"""tmresults - one test's output -> results per cmocka case, with honest skips.

Used by scripts/vm/check-vm (build/vm/results.json) and scripts/test-summary
(the summary `make check` prints for native, asan, aarch64 and vm).

cmocka (CMOCKA_MESSAGE_OUTPUT=stdout, set by tests/meson.build) prints
  [ RUN      ] case          [       OK ] case
  [  FAILED  ] case          [  SKIPPED ] case        [  ERROR   ] --- why
and, after the cases, summary lists that repeat the names: only a result
line for the case that is running counts. Skip reasons come from the lines
tests/test_skip.h prints inside the case:
  TM-SKIP [cap] reason            (a skip)
  TM-SKIP-REFUSED [cap] reason    (the capability is required: a failure)
A skipped case without such a line is reported as a skip with no reason
given. A passing case that printed TM-SKIP skipped part of itself: it stays
a pass and its why says what did not run.

A test that is not cmocka (a shell script), or whose process failed although
every case it printed passed (a crash after the last case, a timeout, a
failed group setup), gets one entry for the whole test.
"""
import re

CASE_RE = re.compile(r"^\[ *(RUN|OK|FAILED|SKIPPED|ERROR|PASSED|LINE) *\] (.*)$")
SKIP_RE = re.compile(r"^(TM-SKIP(?:-REFUSED)?) \[([^\]]*)\] ?(.*)$")
NO_REASON = "no reason given (a bare cmocka skip(); use tm_test_skip from tests/test_skip.h)"


def _tail(lines, n=6):
    out = [l for l in lines if l.strip()]
    return " | ".join(out[-n:])[:600]


def parse_cases(output):
    """[(case, status, why)] from cmocka stdout; status pass|fail|skip."""
    cases = []
    cur = None          # name of the case that is running
    body = []           # its lines
    skips = []          # (kind, cap, reason) seen in it
    for raw in output.splitlines():
        line = raw.rstrip("\r")
        m = CASE_RE.match(line)
        s = SKIP_RE.match(line)
        if s and cur is not None:
            skips.append((s.group(1), s.group(2), s.group(3)))
        if not m:
            if cur is not None:
                body.append(line)
            continue
        kind, name = m.group(1).strip(), m.group(2).strip()
        if kind == "RUN":
            if cur is not None:   # a case that never ended: the process died in it
                cases.append((cur, "fail", "no result line: " + _tail(body)))
            cur, body, skips = name, [], []
            continue
        if kind in ("ERROR", "LINE", "PASSED") or name != cur:
            if cur is not None:
                body.append(line)
            continue
        cases.append(_case(cur, kind, body, skips))
        cur, body, skips = None, [], []
    if cur is not None:
        cases.append((cur, "fail", "no result line (crash, kill or timeout): " + _tail(body)))
    return cases


def _skip_why(skips):
    kind, cap, reason = skips[-1]
    return ("[%s] %s" % (cap, reason)) if cap and cap != "-" else reason


def _case(name, kind, body, skips):
    refused = [s for s in skips if s[0] == "TM-SKIP-REFUSED"]
    if refused:
        return (name, "fail", "required capability would skip: " + _skip_why(refused))
    if kind == "SKIPPED":
        return (name, "skip", _skip_why(skips) if skips else NO_REASON)
    if kind == "OK":
        return (name, "pass", ("partly skipped: " + _skip_why(skips)) if skips else "")
    return (name, "fail", _tail(body))


PLAIN_SKIP_RE = re.compile(r"^\s*SKIP\b:?\s*(.+)$", re.I)


def whole_test_reason(output):
    """The last TM-SKIP reason of an output; else the last "SKIP: why" line
    (how shell-script tests that exit 77 say it); else None."""
    why = plain = None
    for line in output.splitlines():
        line = line.rstrip("\r")
        s = SKIP_RE.match(line)
        if s:
            why = _skip_why([(s.group(1), s.group(2), s.group(3))])
        elif PLAIN_SKIP_RE.match(line):
            plain = PLAIN_SKIP_RE.match(line).group(1)
    return why or plain


def results(test, suite, verdict, output, why_fail="", stderr=""):
    """Entries for one test: verdict is pass|fail|skip|timeout for the process.

    output is what the test printed (stdout, or both streams merged); stderr,
    when kept apart (meson's testlog.json), explains failures whose case
    printed nothing on stdout. Returns [{"name","suite","status","why",
    "test","case"}].
    """
    cases = parse_cases(output)
    err_tail = _tail([l for l in stderr.splitlines()
                      if "ERROR" in l or "LINE" in l or "error" in l], 4)
    cases = [(c, st, (why or err_tail) if st == "fail" else why) for c, st, why in cases]
    output = output + ("\n" + stderr if stderr else "")
    out = []
    for case, status, why in cases:
        out.append({"name": "%s/%s" % (test, case), "suite": suite, "status": status,
                    "why": why, "test": test, "case": case})
    all_ok = all(c[1] != "fail" for c in cases)
    if verdict in ("fail", "timeout") and (not cases or all_ok):
        why = why_fail or ("timed out" if verdict == "timeout" else "failed")
        if cases:
            why += " after its last case"
        tail = _tail(output.splitlines())
        out.append({"name": test, "suite": suite, "status": "fail",
                    "why": (why + (": " + tail if tail else ""))[:800], "test": test, "case": None})
    elif not cases:
        if verdict == "skip":
            why = whole_test_reason(output) or NO_REASON
        elif verdict == "pass":
            why = whole_test_reason(output) or ""
            why = ("partly skipped: " + why) if why else ""
        else:
            why = why_fail
        out.append({"name": test, "suite": suite, "status": verdict, "why": why,
                    "test": test, "case": None})
    return out


def counts(entries):
    n = {"pass": 0, "fail": 0, "skip": 0}
    for e in entries:
        n[e["status"]] += 1
    return n


def count_line(entries):
    n = counts(entries)
    return "%d passed, %d failed, %d skipped" % (n["pass"], n["fail"], n["skip"])
