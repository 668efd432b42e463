#!/usr/bin/env bash
# bench/ab_simulation.sh - detection rate and false-positive rate of the server's experiment
# statistics over many simulated experiments.
#
# Usage: bench/ab_simulation.sh [SEEDS]     (default 200 experiments per row)
#
# The click model, the rankers and what is measured are described at the top of
# crates/reco-serve/examples/ab_simulation.rs: a position-based click model (examination
# 1/sqrt(1 + position), click probability 0.3 in the user's liked category, 0.03 elsewhere),
# a good ranker (60% of a list from the liked category) against a degraded one (50%), users
# split by the server's hash assignment, 4 lists per user. Each row reports the expected power
# of the two-sided 5% z-test at the simulated size, how often the z-test read once at the end
# found the difference, how often the always-valid sequential test found it at any of the
# looks (every 200 lists), how often the guard rail stopped the candidate, and how often
# team-draft interleaving of the same users' lists found it. A/A rows have equal arms: there
# every rate is a false-positive rate.
set -euo pipefail
cargo run --release -q -p reco-serve --example ab_simulation -- "${1:-200}"
