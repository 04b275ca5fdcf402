#!/usr/bin/env bash
# Device side. Keeps the wheel parts that arrived with this call (checked against the manifest) in
# $GPUREC_DIR/parts, outside the repository copy; once all parts are there, rebuilds the wheels,
# checks each one's sha256 and installs them with pip --no-index --no-deps into $GPUREC_DIR/site
# (put it on PYTHONPATH). Idempotent: does nothing when vllm of the locked version already imports
# from there. Nothing is fetched: the device reaches no network.
#
#   bash experiments/gpu_recording/unpack.sh --stash   # calls 1..N-1: keep this call's part
#   bash experiments/gpu_recording/unpack.sh           # last call: keep, rebuild, install
#
# env: GPUREC_DIR (default /tmp/gpurec), GPUREC_PARTS (where parts arrive, default .wheels/parts),
#      PYTHON (default python3: the device's, which has torch)
set -euo pipefail
cd "$(dirname "$0")/../.."
D=${GPUREC_DIR:-/tmp/gpurec}
PY=${PYTHON:-python3}
SITE=$D/site
PARTS=${GPUREC_PARTS:-.wheels/parts}
PACK=experiments/gpu_recording/pack.py
want=$(awk -F'\t' '$1=="carry" && $2=="vllm" {print $3}' experiments/gpu_recording/wheels.lock)

installed() {
    PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c \
        "import sys, vllm; sys.exit(vllm.__version__ != '$want')" 2>/dev/null
}

if installed; then
    echo "unpack.sh: vllm $want already imports from $SITE; nothing to do"
    exit 0
fi
if [[ -f "$PARTS/manifest.json" ]]; then
    "$PY" "$PACK" stash "$PARTS" "$D/parts"
fi
if [[ "${1:-}" == "--stash" ]]; then
    exit 0
fi
"$PY" "$PACK" unpack "$D/parts" "$D/whl"
rm -rf "$SITE.tmp"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
    --target "$SITE.tmp" "$D"/whl/*.whl
rm -rf "$SITE" "$D/whl"
mv "$SITE.tmp" "$SITE"
if ! installed; then
    echo "unpack.sh: installed, but vllm $want does not import from $SITE:" >&2
    PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}" "$PY" -c "import vllm" >&2 || true
    exit 1
fi
echo "unpack.sh: vllm $want installed in $SITE ($(find "$SITE" -maxdepth 1 -name '*.dist-info' | wc -l) distributions)"
