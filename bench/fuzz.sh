#!/usr/bin/env bash
# bench/fuzz.sh - coverage-guided fuzzing of reco's readers and decoders (cargo fuzz, stable).
#
# Builds the targets in fuzz/ (libFuzzer with `-s none`: no sanitizer, so the stable toolchain
# builds them; Rust's bounds and overflow checks are on in the fuzz profile), then runs each
# target for RUNS executions (or SECONDS, whichever ends first), JOBS targets at a time. Each
# run starts from the saved corpus fuzz/corpus/TARGET and grows a working corpus in WORKDIR;
# afterwards the inputs that add coverage are merged back into fuzz/corpus/TARGET (libFuzzer's
# -merge=1), which stays small enough to keep in git and to replay in CI. Prints one JSON line
# per target (executions, seconds, working and saved corpus sizes, crash files) and a markdown
# table. A crash leaves its input in fuzz/artifacts/TARGET/ and the target's log in LOGDIR.
#
# Usage: bench/fuzz.sh [RUNS] [SECONDS] [JOBS] [TARGET...]
#        (default 10000000 executions, 7200 s, 2 at a time, every target; WORKDIR, LOGDIR and
#        MAX_SAVED (bytes, default 4096) in the environment)
# Needs cargo-fuzz (`cargo install cargo-fuzz`). CI does not run this: it replays the saved
# corpus through the same functions (crates/reco-cli/tests/fuzz_corpus.rs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
runs="${1:-10000000}"
seconds="${2:-7200}"
jobs="${3:-2}"
shift $(( $# < 3 ? $# : 3 ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(delimited movielens recbole spec_json spec_toml artifact hnsw serve)
fi
logdir="${LOGDIR:-/tmp/reco-fuzz-logs}"
workdir="${WORKDIR:-$HOME/.cache/reco/fuzz-corpus}"
mkdir -p "$logdir" "$workdir"
cargo fuzz build -s none >&2
bin=target/x86_64-unknown-linux-gnu/release

one() {
  local t="$1" log="$logdir/$1.log" start end status=0
  mkdir -p "corpus/$t" "artifacts/$t" "$workdir/$t"
  start=$(date +%s)
  # -rss_limit_mb: an input that makes a reader allocate beyond 2 GiB counts as a crash.
  "$bin/$t" "$workdir/$t" "corpus/$t" -runs="$runs" -max_total_time="$seconds" \
    -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="artifacts/$t/" \
    > "$log" 2>&1 || status=$?
  end=$(date +%s)
  # Merge into a copy, then keep the new inputs up to MAX_SAVED bytes: model artifacts grow
  # to tens of KiB each, and the saved corpus must stay small enough for git.
  local merged
  merged=$(mktemp -d)
  cp -r "corpus/$t/." "$merged/"
  "$bin/$t" -merge=1 "$merged" "$workdir/$t" > "$log.merge" 2>&1 || true
  find "$merged" -type f -size -"${MAX_SAVED:-4096}"c -exec cp -n {} "corpus/$t/" \;
  rm -rf "$merged"
  local execs crashes work saved bytes
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  crashes=$(find "artifacts/$t" -type f | wc -l)
  work=$(find "$workdir/$t" -type f | wc -l)
  saved=$(find "corpus/$t" -type f | wc -l)
  bytes=$(du -sb "corpus/$t" | cut -f1)
  printf '{"target":"%s","executions":%s,"seconds":%s,"working_corpus_files":%s,"saved_corpus_files":%s,"saved_corpus_bytes":%s,"crash_files":%s,"exit":%s}\n' \
    "$t" "${execs:-0}" "$((end - start))" "$work" "$saved" "$bytes" "$crashes" "$status"
}

results="$logdir/results.jsonl"
: > "$results"
running=0
for t in "${targets[@]}"; do
  one "$t" >> "$results" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait
cat "$results"
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| target | executions | seconds | exec/s | working corpus | saved corpus (files, KiB) | crashes |")
print("|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    rate = r["executions"] / max(r["seconds"], 1)
    print(f"| {r['target']} | {r['executions']:,} | {r['seconds']} | {rate:,.0f} | "
          f"{r['working_corpus_files']} | {r['saved_corpus_files']}, "
          f"{r['saved_corpus_bytes'] // 1024} | {r['crash_files']} |")
PY
