#!/usr/bin/env bash
# Download the wheels of wheels.lock into .wheels/whl (git-ignored) and check each one's size and
# sha256 against the lock. Rows 'carry' by default; --all also fetches the 'skip' rows (for
# make_lock.py or a fuller install). Runs here (package index reachable), not on the device.
#
#   bash experiments/gpu_recording/fetch_wheels.sh [--all] [DEST]      (DEST default .wheels/whl)
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCK=experiments/gpu_recording/wheels.lock
# shellcheck disable=SC2016  # awk conditions, expanded by awk
ROWS='$1=="carry"'
if [[ "${1:-}" == "--all" ]]; then
    # shellcheck disable=SC2016
    ROWS='$1=="carry" || $1=="skip"'
    shift
fi
DEST=${1:-.wheels/whl}
PY=${PYTHON:-python3}
mkdir -p "$DEST"

# the device: CPython 3.12 on manylinux x86_64 (the same tags as make_lock.py's resolver)
PLAT=()
for n in 5 12 17 24 26 27 28 31 34 35; do PLAT+=(--platform "manylinux_2_${n}_x86_64"); done
PLAT+=(--platform manylinux2014_x86_64 --platform manylinux2010_x86_64 --platform manylinux1_x86_64)
PLAT+=(--platform linux_x86_64)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# rows still to fetch: not yet in DEST with the locked sha256
awk -F'\t' "!/^#/ && ($ROWS)" "$LOCK" | while IFS=$'\t' read -r _ name ver _ sha file _; do
    if [[ -f "$DEST/$file" ]] && echo "$sha  $DEST/$file" | sha256sum -c --quiet - 2>/dev/null; then
        continue
    fi
    echo "$name==$ver --hash=sha256:$sha"
done >"$tmp/req.txt"

if [[ -s "$tmp/req.txt" ]]; then
    echo "fetching $(wc -l <"$tmp/req.txt") wheel(s) into $DEST"
    "$PY" -m pip download -q --no-deps --require-hashes --only-binary=:all: --python-version 3.12 \
        --implementation cp --abi cp312 --abi abi3 --abi none "${PLAT[@]}" \
        -d "$tmp/dl" -r "$tmp/req.txt" 2> >(grep -v "^WARNING: Location" >&2)
    mv "$tmp"/dl/*.whl "$DEST"/
fi

# check every locked row of the selection: file present, size and sha256 as locked
bad=0 n=0 bytes=0
while IFS=$'\t' read -r _ name _ size sha file _; do
    n=$((n + 1))
    got=$(stat -c %s "$DEST/$file" 2>/dev/null || echo missing)
    if [[ "$got" != "$size" ]] || ! echo "$sha  $DEST/$file" | sha256sum -c --quiet - 2>/dev/null; then
        echo "BAD: $file (size $got, locked $size)" >&2
        bad=$((bad + 1))
    fi
    bytes=$((bytes + size))
done < <(awk -F'\t' "!/^#/ && ($ROWS)" "$LOCK")
echo "$n wheels, $((bytes / 1048576)) MiB in $DEST, $bad bad"
[[ $bad -eq 0 ]]
