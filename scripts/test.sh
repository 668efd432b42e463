#!/usr/bin/env bash
# Every test: the Rust workspace (cargo test), then the Python package built from this
# checkout into a virtualenv and its pytest suite.
#
# Usage: scripts/test.sh [--rust-only | --python-only]
# Environment:
#   RECO_PY_VENV  the virtualenv (default: target/py-venv; created on first use)
#   PYTHON        the interpreter that creates it (default: python3, which must be >= 3.9)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what="${1:-all}"
if [[ "$what" != "--python-only" ]]; then
  cargo test --workspace
fi
if [[ "$what" != "--rust-only" ]]; then
  venv="${RECO_PY_VENV:-target/py-venv}"
  if [[ ! -x "$venv/bin/python" ]]; then
    "${PYTHON:-python3}" -m venv "$venv"
  fi
  # The wheel builds from source with maturin (the build requirement pip fetches); the test
  # extras bring pandas, scipy and pytest, the peers extras implicit and Surprise, which the
  # compatibility layers are compared with side by side (RECO_REQUIRE_PEERS makes a missing
  # peer a failure instead of a skip).
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet '.[test,peers]'
  RECO_REQUIRE_PEERS=1 "$venv/bin/python" -m pytest -q python/tests
fi
