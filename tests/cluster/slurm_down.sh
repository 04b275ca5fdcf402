#!/usr/bin/env bash
# Stop what tests/cluster/slurm_up.sh STATE_DIR started (by its pid files) and remove STATE_DIR.
set -uo pipefail
STATE=${1:?usage: slurm_down.sh STATE_DIR}
[ -d "$STATE" ] || exit 0
for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munge/munged.pid"; do
  [ -s "$pidfile" ] || continue
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
done
rm -rf "$STATE"
