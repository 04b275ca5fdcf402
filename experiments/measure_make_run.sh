#!/usr/bin/env bash
# Measure `make run` on a fresh clone: wall time and peak memory of the whole command (venv setup
# included) and, per run, the simulator's own timing.json. Usage: experiments/measure_make_run.sh [DIR]
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$(mktemp -d)/simroute}"
git clone -q "$src" "$dir"
cd "$dir"
/usr/bin/time -f 'make run: wall %e s, peak RSS %M KiB (largest process)' make run >make_run.log 2>&1 || {
  tail -20 make_run.log; exit 1; }
tail -1 make_run.log
for d in outputs/make_run/*/; do
  echo "$d"; cat "$d/timing.json"; grep -E '"(success_rate|cost_total_usd|cost_reduction)"' "$d/summary.json"
done
