#!/bin/bash
# Run every libFuzzer harness in BUILD/fuzz for a short fixed time each.
# A crash or sanitizer report fails make check.
set -euo pipefail
build=${1:-build-fuzz}
secs=${2:-20}
shopt -s nullglob
ran=0
for f in "$build"/fuzz/fuzz_*; do
  [ -f "$f" ] && [ -x "$f" ] || continue   # skip meson's *.p object dirs
  name=$(basename "$f")
  corpus="$build/fuzz/corpus-$name"
  mkdir -p "$corpus"
  seeds=()
  [ -d "fuzz/seeds/$name" ] && seeds=("fuzz/seeds/$name")
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -print_final_stats=1 "$corpus" "${seeds[@]}" 2>&1 | tail -n 12
  ran=$((ran+1))
done
echo "fuzz: $ran harness(es) ran, 0 crashes"
