#!/bin/sh
# Usage errors of every tagmem subcommand: exit status 2 (tools/cmds.h), and
# the message names the bad argument AND says what is allowed (a range, a
# list of words or a format), so a user can fix the command line without
# reading --help. Each case: expected substring, then the arguments.
set -u
tagmem=$1
fail=0
err=$(mktemp)
trap 'rm -f "$err"' EXIT

check() {
	want=$1
	shift
	"$tagmem" "$@" >/dev/null 2>"$err"
	rc=$?
	if [ "$rc" -ne 2 ]; then
		echo "FAIL: tagmem $*: exit $rc, expected 2"; cat "$err"; fail=1
	elif ! grep -qF -- "$want" "$err"; then
		echo "FAIL: tagmem $*: stderr lacks '$want':"; cat "$err"; fail=1
	fi
}

check "--folio-order '12': must be an integer 0..9" swap demo --folio-order 12
check "--folio-order '': must be an integer 0..9" swap demo --folio-order ''
check "--tagged-fraction '1.5': must be a number between 0 and 1" swap demo --tagged-fraction 1.5
check "--tagged-fraction 'nan': must be a number between 0 and 1" swap demo --tagged-fraction nan
check "--size '12Q': must be a size in bytes with an optional K/M/G/T suffix" swap demo --size 12Q
check "--threads '0': must be an integer 1..256" swap demo --threads 0
check "--fault-mode 'huge': must be folio or page" swap demo --fault-mode huge
check "--seed 'x': must be an unsigned 64-bit integer" swap demo --seed x
check "at least 524288 bytes" swap demo --size 4K
check "--size needs a value" swap demo --size
check "unknown option '--bogus'" swap demo --bogus

check "--channels '17': must be an integer 1..16" migrate send --to unix:/x --channels 17
check "--size '12Q': must be a size in bytes" migrate send --to unix:/x --size 12Q
check "--timeout-ms '0': must be an integer 1..86400000" migrate recv --listen unix:/x --timeout-ms 0
check "--compress 'zstd:30': must be none, zstd or zstd:LEVEL (LEVEL 1..19)" migrate send --compress zstd:30
check "--to ADDR is required (tcp:HOST:PORT or unix:PATH)" migrate send
check "unknown subcommand 'bogus': must be send or recv" migrate bogus

check "--regions '0': must be an integer 1..4096" snapshot save --out /nonexistent/x --regions 0
check "--page-size '8K': must be 4096, 16384 or 65536" snapshot save --out /nonexistent/x --page-size 8K
check "--threads '999': must be an integer 0..256" snapshot restore --threads 999 f
check "--chunk '1G': must be a size" snapshot save --out /nonexistent/x --chunk 1G
check "--io 'fast': must be auto, direct or buffered" snapshot restore --io fast f
check "unknown subcommand 'bogus': must be save, restore, verify or info" snapshot bogus
check "--base 'zz': must be an address" core --out /nonexistent/c --base zz

check "--layout 'foo': must be untagged, one-tag, alloc, random, mix or all" corpus --layout foo
check "--pages '0': must be a page count 1..16777216" corpus --pages 0
check "unexpected argument 'x'" tags x

check "--threads '65': expected an integer 1..64" storage-sim --threads 65
check "--events '0': expected an integer 1..1099511627776" storage-sim --events 0

exit $fail
