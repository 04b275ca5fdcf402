#!/usr/bin/env bash
# 64-point sweep (4 policies x 4 seeds x 4 local replica counts, 5,000 requests each) with Hydra's
# basic launcher (one job at a time) and with the joblib launcher on 2 workers; prints both times.
set -euo pipefail
cd "$(dirname "$0")/.."
GRID="workload.n_requests=${N:-5000} policy=router_first,cost_aware,thompson,win_rate seed=0,1,2,3 tiers.local.pools.0.replicas=1,2,3,4 progress=false"
out=${OUT:-/tmp/simroute_sweep_speedup}
rm -rf "$out"
t0=$(date +%s.%N)
.venv/bin/simroute run -m $GRID hydra.sweep.dir="$out/serial" > "$out.serial.log" 2>&1
t1=$(date +%s.%N)
.venv/bin/simroute run -m $GRID hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweep.dir="$out/joblib" > "$out.joblib.log" 2>&1
t2=$(date +%s.%N)
.venv/bin/simroute aggregate "$out/joblib"
python3 -c "s=$t1-$t0; j=$t2-$t1; print(f'serial {s:.1f} s, joblib(2) {j:.1f} s, speed-up {s/j:.2f}x')"
