#!/bin/sh
# `tagmem migrate recv` without tags against `tagmem migrate send` with MTE
# tags: two real processes; both must fail, and both must name the
# difference. Then the same pair with matching shapes must succeed.
set -u
tagmem=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
addr="unix:$dir/m.sock"

"$tagmem" migrate recv --listen "$addr" --size 4M --meta none --timeout-ms 10000 \
  >"$dir/recv.out" 2>"$dir/recv.err" &
rpid=$!
"$tagmem" migrate send --to "$addr" --size 4M --dirty-rate 1M --quiet \
  >"$dir/send.out" 2>"$dir/send.err"
src=$?
wait $rpid
dst=$?
want="source region 'ram' has MTE 4b/16B tags, destination region 'ram' has none"
fail=0
[ $src -ne 0 ] || { echo "send succeeded against a mismatched receiver"; fail=1; }
[ $dst -ne 0 ] || { echo "recv succeeded against a mismatched sender"; fail=1; }
grep -qF "$want" "$dir/send.err" || { echo "send did not name the difference:"; cat "$dir/send.err"; fail=1; }
grep -qF "$want" "$dir/recv.err" || { echo "recv did not name the difference:"; cat "$dir/recv.err"; fail=1; }

"$tagmem" migrate recv --listen "$addr" --size 4M --json >"$dir/recv.json" 2>"$dir/recv.err" &
rpid=$!
"$tagmem" migrate send --to "$addr" --size 4M --dirty-rate 4M --channels 3 \
  --compress zstd:3 --json >"$dir/send.json" 2>"$dir/send.err"
src=$?
wait $rpid
dst=$?
[ $src -eq 0 ] && [ $dst -eq 0 ] || { echo "matched migration failed ($src/$dst)"; cat "$dir/send.err" "$dir/recv.err"; fail=1; }
grep -q '"verified": true' "$dir/send.json" || { echo "send not verified"; cat "$dir/send.json"; fail=1; }
grep -q '"verified": true' "$dir/recv.json" || { echo "recv not verified"; cat "$dir/recv.json"; fail=1; }
[ $fail -eq 0 ] && echo "ok: mismatch refused on both sides; matched migration verified"
exit $fail
