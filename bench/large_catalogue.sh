#!/usr/bin/env bash
# bench/large_catalogue.sh - every figure of the large-catalogue section of BENCHMARKS.md:
# MovieLens-100K retrieval + ranking (the lectures' exercise, budget sweep, MMR sweep with a
# plot, blend vs its best component, fairness audit), the 1M-item synthetic catalogue
# (pipeline latency, HNSW on ALS vectors), our boosted trees against forust-ml, and the 1M x 64
# ANN comparison with hnswlib (bench/ann_pairs.sh).
#
# Usage: bench/large_catalogue.sh [OUT_DIR]   (default /tmp/reco-large-catalogue)
# Needs data/ml-100k (scripts/fetch-movielens-100k.sh) and the peers venv (bench/peers/setup.sh).
# Run on an idle machine: the script runs one job at a time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-/tmp/reco-large-catalogue}"
mkdir -p "$out"
py="${RECO_PEERS_VENV:-$HOME/.cache/reco/peers-venv}/bin/python"
# Naming an example restricts a build to examples, so the binary is built on its own.
cargo build --release -p reco-cli
cargo build --release -p reco-pipeline --example experiments -p reco-ann --example ann_bench
x=target/release/examples/experiments
reco=target/release/reco

if [ -z "${SKIP_ML100K:-}" ]; then
$x lecture data/ml-100k > "$out/lecture.md"
$x budget data/ml-100k > "$out/budget.md"
$x mmr data/ml-100k docs/img/mmr.svg > "$out/mmr.md"
fi
$reco eval --data data/ml-100k --threshold 1 --protocol temporal:0.2 --k 10,50 --no-auc --baseline ials \
  --model '{"name":"ials","model":"ials","factors":32,"epochs":15}' \
  --model '{"name":"item-knn","model":"item-knn","similarity":"vector-cosine","max_neighbours":100}' \
  --model '{"name":"content","model":"content"}' \
  --model '{"name":"blend","model":"blend","models":[{"name":"mf","model":"ials","factors":32,"epochs":15},{"name":"knn","model":"item-knn","similarity":"vector-cosine","max_neighbours":100},{"name":"content","model":"content"}]}' \
  > "$out/blend.md"
$reco audit --data data/ml-100k --threshold 1 --protocol temporal:0.2 --by gender,age \
  --model popularity --model '{"name":"ials","model":"ials","factors":32,"epochs":15}' --reweight 0.5 > "$out/audit.md"
cargo run --release --manifest-path bench/gbdt-crates/Cargo.toml -- data/ml-100k examples/pipeline.toml > "$out/gbdt-crates.md"
$x catalogue 1000000 > "$out/catalogue.md"
$x mips 1000000 > "$out/mips.md"
WARM_ONLY=1 $x mips 1000000 > "$out/mips-warm.md"
bench/ann_pairs.sh 5 /tmp/reco-ann 1000000 > "$out/ann.md"
echo "wrote $out"
