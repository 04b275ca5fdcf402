#!/usr/bin/env bash
# Device side, one call: install vLLM from the carried wheel parts (unpack.sh; skipped when it is
# already installed), record the GPU case with experiments/vllm_validation/record.py under a hard
# time limit, and write the run to $OUT/<case name>/ (run.json, case.json, requests.parquet,
# steps.parquet, schedule.parquet) with the whole log in $OUT/log.txt: 6 files, within the device
# tool's 8 files back.
#
#   bash experiments/gpu_recording/record_on_gpu.sh [CASE]
#       CASE default experiments/vllm_validation/cases/gpu_h200_llama31_8b.json
#
# env: OUT (the device tool sets it; default $GPUREC_DIR/out), GPUREC_DIR (default /tmp/gpurec),
#      BUDGET_S (seconds for the whole script, default 540: under the tool's 600 s a call),
#      EAGER=1 (record with --enforce-eager: no torch.compile, no CUDA graphs).
# The first attempt uses the case's settings (torch.compile + CUDA graphs); if it fails, and time is
# left, one retry runs eager. Exit status: 0 run written, 3 install failed, 4 case invalid,
# 5 no run recorded.
set -uo pipefail
start=$SECONDS
cd "$(dirname "$0")/../.." || exit 2
CASE=${1:-experiments/vllm_validation/cases/gpu_h200_llama31_8b.json}
D=${GPUREC_DIR:-/tmp/gpurec}
OUT=${OUT:-$D/out}
BUDGET_S=${BUDGET_S:-540}
RETRY_S=${RETRY_S:-150}  # kept back from the first attempt for the eager retry
mkdir -p "$OUT" "$D"
exec > >(tee -a "$OUT/log.txt") 2>&1
left() { echo $((BUDGET_S - (SECONDS - start))); }
say() { echo "== [$((SECONDS - start)) s] $*"; }

say "record_on_gpu.sh $CASE, budget $BUDGET_S s, $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader || true
python3 -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
    "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO GPU")'

say "install"
if ! timeout -k 5 "$(left)" bash experiments/gpu_recording/unpack.sh; then
    say "install failed"
    exit 3
fi
export PYTHONPATH="$D/site${PYTHONPATH:+:$PYTHONPATH}"
export VLLM_ENABLE_V1_MULTIPROCESSING=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export VLLM_DISABLE_REQUEST_ID_RANDOMIZATION=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export VLLM_USE_FLASHINFER_SAMPLER=0  # FlashInfer is not carried (wheels.lock)

if ! python3 experiments/vllm_validation/record.py "$CASE" --check; then
    say "invalid case"
    exit 4
fi
name=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["name"])' "$CASE")
run=$D/runs/$name
flags=(--device cuda --cache-dir "$D/models")
if [[ "${EAGER:-0}" == 1 ]]; then flags+=(--enforce-eager); fi

attempt() {  # attempt SECONDS [extra record.py flags]; at least 30 s (timeout 0 would mean none)
    local limit=$(($1 > 30 ? $1 : 30))
    shift
    rm -rf "$run"
    say "record.py ${flags[*]} $*  (time limit $limit s)"
    timeout -k 10 "$limit" python3 experiments/vllm_validation/record.py "$CASE" "$run" "${flags[@]}" "$@"
}

attempt $(($(left) - RETRY_S))
rc=$?
if [[ $rc -ne 0 && "${EAGER:-0}" != 1 && $(left) -gt 90 ]]; then
    say "first attempt ended with status $rc (124: time limit); retrying eager"
    attempt $(($(left) - 15)) --enforce-eager
    rc=$?
fi
if [[ $rc -ne 0 || ! -f "$run/run.json" ]]; then
    say "no run recorded (status $rc)"
    exit 5
fi
mkdir -p "$OUT/$name"
cp "$run"/*.json "$run"/*.parquet "$OUT/$name/"
say "run written to \$OUT/$name: $(cd "$OUT/$name" && echo *)"
python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print({k: r.get(k) for k in
    ("vllm_version", "gpu_model", "num_gpu_blocks", "enforce_eager", "compilation_mode",
     "num_requests", "num_steps", "wall_s")})' "$run/run.json"
