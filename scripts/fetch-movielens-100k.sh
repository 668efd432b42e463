#!/usr/bin/env bash
# fetch-movielens-100k.sh - put the MovieLens 100K data set on disk as RecBole
# atomic files (ml-100k.inter, ml-100k.item, ml-100k.user).
#
# Usage: scripts/fetch-movielens-100k.sh [DEST]
#
#   DEST  destination directory (default: data/ml-100k under the repository
#         root; data/ is gitignored, never commit its contents).
#
# The files are taken from the RecBole 1.2.1 wheel on PyPI, which ships
# ml-100k as an example data set under recbole/dataset_example/ml-100k/.
# Only `pip download` is used (nothing is installed). The wheel is fetched
# into a temporary directory that is removed on exit.
#
# Idempotent: if the three files already exist (and are non-empty) in DEST,
# nothing is downloaded. Set FORCE=1 to fetch again.
#
# Environment:
#   PYTHON  Python interpreter providing pip (default: python3)
#   FORCE   set to 1 to re-download even if the files exist
set -euo pipefail

RECBOLE_VERSION="1.2.1"
FILES=(ml-100k.inter ml-100k.item ml-100k.user)
PREFIX="recbole/dataset_example/ml-100k/"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/ml-100k}"
python="${PYTHON:-python3}"

die() { echo "fetch-movielens-100k: error: $*" >&2; exit 1; }
info() { echo "fetch-movielens-100k: $*" >&2; }

all_present() {
    local f
    for f in "${FILES[@]}"; do
        [[ -s "$dest/$f" ]] || return 1
    done
}

if [[ "${FORCE:-0}" != "1" ]] && all_present; then
    info "files already present in $dest, skipping download (FORCE=1 to refetch)"
else
    command -v "$python" >/dev/null 2>&1 || die "$python not found"
    "$python" -m pip --version >/dev/null 2>&1 || die "pip is not available for $python"

    tmp="$(mktemp -d "${TMPDIR:-/tmp}/reco-ml100k.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT

    info "downloading recbole==$RECBOLE_VERSION wheel (no dependencies)"
    "$python" -m pip download --quiet --no-deps --only-binary :all: \
        "recbole==$RECBOLE_VERSION" -d "$tmp/dl" \
        || die "pip download of recbole==$RECBOLE_VERSION failed"

    shopt -s nullglob
    wheels=("$tmp"/dl/recbole-"$RECBOLE_VERSION"-*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -ge 1 ]] || die "no recbole wheel found after download"
    wheel="${wheels[0]}"

    mkdir -p "$tmp/x"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$wheel" "${PREFIX}*" -d "$tmp/x" \
            || die "unzip could not extract ${PREFIX} from $(basename "$wheel")"
    else
        info "unzip not found, extracting with python zipfile"
        "$python" - "$wheel" "$PREFIX" "$tmp/x" <<'PY' || die "python extraction failed"
import sys, zipfile
wheel, prefix, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"no member under {prefix} in {wheel}")
    for n in names:
        z.extract(n, out)
PY
    fi

    mkdir -p "$dest"
    for f in "${FILES[@]}"; do
        src="$tmp/x/$PREFIX$f"
        [[ -s "$src" ]] || die "$f missing from the wheel under $PREFIX"
        # Write to a temp name then rename, so an interrupted run never
        # leaves a truncated file that would be taken as present.
        cp "$src" "$dest/.$f.part"
        mv -f "$dest/.$f.part" "$dest/$f"
    done
    info "extracted ${#FILES[@]} files into $dest"
fi

echo "line counts (header included) in $dest:"
for f in "${FILES[@]}"; do
    printf '  %8d  %s\n' "$(wc -l < "$dest/$f")" "$f"
done
