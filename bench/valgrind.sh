#!/usr/bin/env bash
# bench/valgrind.sh - the tests of reco's unsafe code under valgrind memcheck.
#
# The unsafe code: the HNSW graph (atomic link cells read through raw pointers, prefetches),
# its huge-page buffers (mmap/madvise), the AVX2/FMA kernels (reco-ann's distance kernels and
# the factor models' dot products, dispatched at run time), the hybrid model's atomic weight
# tables (plain views of AtomicU32 cells), and the file checks of reco-core's input module.
# Each test binary runs under memcheck with invalid reads/writes, uninitialised values and
# definite leaks counted as errors; the script prints one JSON line per binary and fails when
# any has an error.
#
# Usage: bench/valgrind.sh   (needs valgrind; about 15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
command -v valgrind > /dev/null || { echo "valgrind is not installed" >&2; exit 2; }
logdir="${LOGDIR:-/tmp/reco-valgrind}"
mkdir -p "$logdir"

# Test binaries by crate and target, from cargo's JSON messages.
bins=$(cargo test --no-run --message-format=json -p reco-ann -p reco-models -p reco-core \
  --lib --test search 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"] + "/" + m["target"]["kind"][0], m["executable"])
')

# (binary, test filter): the tests that drive the unsafe code.
runs=(
  "reco_ann/lib|"
  "search/test|"
  "reco_models/lib|mf::"
  "reco_core/lib|input::"
)
status=0
for r in "${runs[@]}"; do
  name="${r%%|*}" filter="${r#*|}"
  exe=$(echo "$bins" | awk -v n="$name" '$1 == n { print $2 }' | head -1)
  [ -n "$exe" ] || { echo "no test binary for $name" >&2; status=1; continue; }
  log="$logdir/$(echo "$name" | tr / -).log"
  start=$(date +%s)
  rc=0
  # Hundreds of vectors instead of thousands keep the recall tests meaningful under a ~30x
  # slowdown; the proptest cases run fewer iterations.
  PROPTEST_CASES=16 valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite --fair-sched=yes \
    --log-file="$log" "$exe" --test-threads=2 $filter > "$log.out" 2>&1 || rc=$?
  errors=$(grep -o 'ERROR SUMMARY: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
  tests=$(grep -o 'test result: [a-z]*\. [0-9]* passed' "$log.out" | grep -o '[0-9]* passed' | grep -o '[0-9]*' || echo 0)
  printf '{"binary":"%s","filter":"%s","tests_passed":%s,"memcheck_errors":"%s","exit":%s,"seconds":%s}\n' \
    "$name" "$filter" "${tests:-0}" "$errors" "$rc" "$(( $(date +%s) - start ))"
  [ "$rc" -eq 0 ] || status=1
done
exit "$status"
