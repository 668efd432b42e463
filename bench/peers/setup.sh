#!/usr/bin/env bash
# bench/peers/setup.sh - create the Python virtualenv used to run peer
# recommender libraries next to reco for comparison benchmarks.
#
# Usage: bench/peers/setup.sh
#
# The virtualenv lives OUTSIDE the repository, at
#   ${RECO_PEERS_VENV:-$HOME/.cache/reco/peers-venv}
# and receives: numpy, scipy, pandas, scikit-surprise, implicit, hnswlib,
# faiss-cpu and lightfm.
#
# lightfm only ships an sdist whose PEP 517 build fails, so it is built the
# legacy way: its sdist is downloaded (pip download --no-binary :all:, with
# legacy metadata preparation, see download_lightfm_sdist), unpacked, built
# with `python setup.py bdist_wheel` inside the venv, and the resulting wheel
# is installed (and kept under $VENV/wheels for reuse). The build uses
# lightfm's own flags (-march=native, OpenMP), so the wheel is for this
# machine only.
#
# Idempotent: the venv is reused if present, and a package is skipped when
# its module already imports in the venv. A package that fails to install
# does not stop the others; the summary at the end lists what failed, and the
# script then exits 1 (0 when everything is importable). Per-package pip logs
# are kept under $VENV/logs/.
#
# Environment:
#   RECO_PEERS_VENV  venv directory (default: $HOME/.cache/reco/peers-venv)
#   PYTHON           interpreter used to create the venv (default: python3)
set -euo pipefail

venv="${RECO_PEERS_VENV:-$HOME/.cache/reco/peers-venv}"
python="${PYTHON:-python3}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

log() { echo "peers-setup: $*" >&2; }
die() { echo "peers-setup: error: $*" >&2; exit 1; }

# Refuse a venv inside the work tree: it must never end up in a commit.
venv_abs="$(realpath -m "$venv")"
case "$venv_abs/" in
    "$repo_root"/*) die "RECO_PEERS_VENV ($venv_abs) is inside the repository; choose a path outside it" ;;
esac
venv="$venv_abs"

command -v "$python" >/dev/null 2>&1 || die "$python not found"

# --- virtualenv ------------------------------------------------------------
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    log "reusing venv $venv"
else
    log "creating venv $venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv --clear "$venv" || die "could not create venv at $venv"
fi
vpy="$venv/bin/python"
mkdir -p "$venv/logs" "$venv/wheels"

# Does module $1 import in the venv?
importable() { "$vpy" -c "import $1" >/dev/null 2>&1; }

# pip install into the venv, output to a log file; tail of the log on failure.
vpip() {
    local logname="$1"; shift
    local logfile="$venv/logs/$logname.log"
    if "$vpy" -m pip install "$@" >"$logfile" 2>&1; then
        return 0
    fi
    log "pip install $* failed; last lines of $logfile:"
    tail -n 15 "$logfile" | sed 's/^/    /' >&2
    return 1
}

# Build tooling (needed for packages shipped as sdists, and for lightfm).
if ! "$vpy" -c 'import setuptools, wheel' >/dev/null 2>&1; then
    log "installing build tooling (pip, setuptools, wheel)"
    vpip tooling --upgrade pip setuptools wheel \
        || log "warning: could not install build tooling; sdist builds may fail"
fi

failed=()

# install_pkg PIP_NAME IMPORT_NAME
install_pkg() {
    local pkg="$1" mod="$2"
    if importable "$mod"; then
        log "$pkg: already installed, skipping"
        return 0
    fi
    log "$pkg: installing"
    if vpip "$pkg" "$pkg" && importable "$mod"; then
        log "$pkg: ok"
    else
        importable "$mod" || log "$pkg: FAILED (module '$mod' does not import)"
        failed+=("$pkg")
    fi
}

# Download the lightfm sdist into directory $1, appending output to log $2.
#
# `pip download` prepares the metadata of what it downloads, and lightfm's
# setup.py cannot run under PEP 517 (it sets an attribute on __builtins__,
# which is a dict when setuptools' build backend exec()s it). So try the
# plain PEP 517 download first (in case a later release fixes this), then the
# legacy path `--no-build-isolation --no-use-pep517`, which recent pip no
# longer has: for that, an older pip (<25.3) is fetched as a wheel into the
# temporary directory and run straight from it, with the venv's python.
download_lightfm_sdist() {
    local dir="$1" lf="$2"
    if "$vpy" -m pip download --no-deps --no-binary :all: lightfm -d "$dir" >>"$lf" 2>&1; then
        return 0
    fi
    echo "--- PEP 517 download failed, retrying with legacy metadata preparation" >>"$lf"
    local pip_cmd=("$vpy" -m pip)
    if ! "$vpy" -m pip download --help 2>/dev/null | grep -q -- '--no-use-pep517'; then
        "$vpy" -m pip download --no-deps --only-binary :all: 'pip<25.3' -d "$dir/oldpip" >>"$lf" 2>&1 || return 1
        local w=("$dir"/oldpip/pip-*.whl)
        [[ ${#w[@]} -ge 1 && -f "${w[0]}" ]] || { echo "no pip wheel downloaded" >>"$lf"; return 1; }
        pip_cmd=("$vpy" "${w[0]}/pip")
    fi
    "${pip_cmd[@]}" download --no-deps --no-binary :all: --no-build-isolation \
        --no-use-pep517 lightfm -d "$dir" >>"$lf" 2>&1
}

# lightfm: legacy `setup.py bdist_wheel` build from the sdist.
install_lightfm() {
    if importable lightfm; then
        log "lightfm: already installed, skipping"
        return 0
    fi
    shopt -s nullglob
    local cached=("$venv"/wheels/lightfm-*.whl)
    shopt -u nullglob
    if [[ ${#cached[@]} -ge 1 ]]; then
        log "lightfm: installing previously built wheel $(basename "${cached[0]}")"
        if vpip lightfm-install "${cached[0]}" && importable lightfm; then
            log "lightfm: ok"
            return 0
        fi
        log "lightfm: cached wheel did not work, rebuilding"
        rm -f "${cached[@]}"
    fi

    log "lightfm: building from sdist (setup.py bdist_wheel)"
    local tmp rc=0
    local lf="$venv/logs/lightfm-build.log"
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/reco-lightfm.XXXXXX")"
    : >"$lf"
    # Every step checks its own status: `set -e` does not apply inside a
    # subshell whose status is tested with `||`.
    (
        shopt -s nullglob
        # Cython is only needed if the sdist lacks pre-generated C sources;
        # installing it is cheap and makes the build independent of that.
        if ! "$vpy" -c 'import Cython' >/dev/null 2>&1; then
            "$vpy" -m pip install cython >>"$lf" 2>&1 || exit 1
        fi
        download_lightfm_sdist "$tmp/sdist" "$lf" || exit 1
        sd=("$tmp"/sdist/lightfm-*.tar.gz)
        [[ ${#sd[@]} -ge 1 ]] || { echo "no lightfm sdist downloaded" >>"$lf"; exit 1; }
        mkdir -p "$tmp/src" && tar -xzf "${sd[0]}" -C "$tmp/src" || exit 1
        src=("$tmp"/src/lightfm-*/)
        [[ ${#src[@]} -ge 1 ]] || { echo "lightfm sdist did not unpack as expected" >>"$lf"; exit 1; }
        cd "${src[0]}" || exit 1
        "$vpy" setup.py bdist_wheel >>"$lf" 2>&1 || exit 1
        whl=(dist/lightfm-*.whl)
        [[ ${#whl[@]} -ge 1 ]] || { echo "bdist_wheel produced no wheel" >>"$lf"; exit 1; }
        cp "${whl[0]}" "$venv/wheels/" || exit 1
        "$vpy" -m pip install "$venv/wheels/$(basename "${whl[0]}")" >>"$lf" 2>&1 || exit 1
    ) || rc=$?
    rm -rf "$tmp"
    if [[ $rc -eq 0 ]] && importable lightfm; then
        log "lightfm: ok"
    else
        log "lightfm: FAILED; last lines of $lf:"
        tail -n 15 "$lf" | sed 's/^/    /' >&2
        failed+=("lightfm")
    fi
}

# --- packages --------------------------------------------------------------
# Base numeric stack first: the others build or run against it.
install_pkg numpy numpy
install_pkg scipy scipy
install_pkg pandas pandas
install_pkg scikit-surprise surprise
install_pkg implicit implicit
install_pkg hnswlib hnswlib
install_pkg faiss-cpu faiss
install_lightfm

# --- summary ---------------------------------------------------------------
echo "venv: $venv"
echo "python: $("$vpy" -c 'import sys; print(sys.version.split()[0])')"
"$vpy" - <<'PY'
import importlib
from importlib import metadata

pkgs = [("numpy", "numpy"), ("scipy", "scipy"), ("pandas", "pandas"),
        ("scikit-surprise", "surprise"), ("implicit", "implicit"),
        ("hnswlib", "hnswlib"), ("faiss-cpu", "faiss"), ("lightfm", "lightfm")]
for dist, mod in pkgs:
    try:
        importlib.import_module(mod)
    except Exception as e:  # noqa: BLE001 - report whatever went wrong
        print(f"  {dist:16s} MISSING ({type(e).__name__}: {e})")
        continue
    try:
        ver = metadata.version(dist)
    except metadata.PackageNotFoundError:
        ver = "?"
    print(f"  {dist:16s} {ver}")
PY

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]} (logs in $venv/logs/)" >&2
    exit 1
fi
echo "all peer packages installed"
