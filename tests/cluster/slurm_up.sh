#!/usr/bin/env bash
# Start a real single-node SLURM (Debian's slurm-wlm + munge) on this machine, for the `cluster`
# tests: slurmctld and slurmd on 127.0.0.1 only, one node `localhost` with 2 CPUs, partition `local`.
#   tests/cluster/slurm_up.sh STATE_DIR     then: export SLURM_CONF=STATE_DIR/slurm.conf
#   tests/cluster/slurm_down.sh STATE_DIR
# Installs slurm-wlm and munge with apt when missing (needs root). Exit status 3: the engine cannot be
# had here (not root and not installed, or apt cannot install it) -> the tests skip with that reason.
# Nothing in /etc/slurm is touched: the config lives in STATE_DIR and is named by $SLURM_CONF.
set -euo pipefail
STATE=${1:?usage: slurm_up.sh STATE_DIR}
CTLD_PORT=${SIMROUTE_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${SIMROUTE_SLURMD_PORT:-16818}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)

need_install=0
for b in slurmctld slurmd sbatch sinfo munged; do
  command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || need_install=1
done
if [ "$need_install" = 1 ]; then
  if [ "$(id -u)" != 0 ]; then echo "slurm-wlm/munge missing and not root: cannot install" >&2; exit 3; fi
  echo "installing slurm-wlm and munge (apt)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! { timeout 300 apt-get update -q >"$STATE/apt.log" 2>&1 &&
         timeout 600 apt-get install -y -q --no-install-recommends slurm-wlm munge >>"$STATE/apt.log" 2>&1; }; then
    echo "apt could not install slurm-wlm and munge (see $STATE/apt.log)" >&2; exit 3
  fi
fi
export PATH=/usr/sbin:/sbin:$PATH

# munge: our own munged on its own socket and key, so a system munged (if any) is left alone.
mkdir -p "$STATE/munge" "$STATE/ctld" "$STATE/spool"
chmod 700 "$STATE/munge"
if [ ! -s "$STATE/munge/munge.key" ]; then
  dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1 count=1024 status=none
  chmod 400 "$STATE/munge/munge.key"
fi
SOCK=$STATE/munge/munge.socket
# munged refuses to run as root unless forced; it runs as the caller (root or the test's user).
munged --force --socket="$SOCK" --key-file="$STATE/munge/munge.key" --pid-file="$STATE/munge/munged.pid" \
  --log-file="$STATE/munge/munged.log" --seed-file="$STATE/munge/munged.seed"
munge --socket="$SOCK" -n | unmunge --socket="$SOCK" >/dev/null

USER_NAME=$(id -un)
MEM_MB=$(awk '/MemTotal/ {print int($2/1024/2)}' /proc/meminfo)
cat >"$STATE/slurm.conf" <<CONF
ClusterName=simroute-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$USER_NAME
SlurmdUser=$USER_NAME
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCK
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=2 RealMemory=$MEM_MB State=UNKNOWN
PartitionName=local Nodes=localhost Default=YES MaxTime=60 State=UP
CONF
export SLURM_CONF=$STATE/slurm.conf

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 60); do
  state=$(sinfo -h -N -n localhost -o %t 2>/dev/null || true)
  if [ "$state" = idle ]; then echo "SLURM up: node localhost idle, partition local (SLURM_CONF=$SLURM_CONF)"; exit 0; fi
  sleep 1
done
echo "SLURM did not come up (node state: ${state:-none}); logs in $STATE" >&2
tail -20 "$STATE/slurmctld.log" "$STATE/slurmd.log" >&2 || true
exit 1
