#!/usr/bin/env bash
# Starts a one-node Slurm cluster (munge, slurmctld, slurmd from Debian's packages) on
# 127.0.0.1 for the tests, with every file under one directory, and prints `export`
# lines (SLURM_CONF, NC2ZARR_TEST_SLURM). Stop it with `scripts/slurm-cluster.sh stop DIR`,
# which kills the daemons by their pid files.
# Usage: scripts/slurm-cluster.sh start DIR | stop DIR
set -euo pipefail
cmd=${1:?usage: slurm-cluster.sh start|stop DIR}
dir=${2:?usage: slurm-cluster.sh start|stop DIR}

stop() {
  for p in slurmd slurmctld munged; do
    if [ -f "$dir/$p.pid" ]; then
      kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
}
if [ "$cmd" = stop ]; then stop; exit 0; fi

mkdir -p "$dir"/{state,spool,log,munge}
chmod 755 "$dir" "$dir/munge"
dir=$(cd "$dir" && pwd)
# munged refuses a socket directory unless every parent is world-executable.
case "$dir" in /tmp/*) ;; *) echo "slurm-cluster.sh: DIR must be under /tmp (munge's permission checks)" >&2; exit 2 ;; esac
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
ctl_port=$(free_port)
d_port=$(free_port)
mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)

[ -f "$dir/munge/munge.key" ] || mungekey -c -k "$dir/munge/munge.key" >/dev/null 2>&1
chmod 600 "$dir/munge/munge.key"
munged --key-file "$dir/munge/munge.key" --socket "$dir/munge/munge.socket" \
  --pid-file "$dir/munged.pid" --log-file "$dir/log/munged.log" --seed-file "$dir/munge/munge.seed" --force

cat >"$dir/slurm.conf" <<CONF
ClusterName=nc2zarr-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=5
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_interval=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 1 100); do
  if sinfo -h -o %t 2>/dev/null | grep -q idle; then
    echo "export SLURM_CONF=$SLURM_CONF"
    echo "export NC2ZARR_TEST_SLURM=1"
    exit 0
  fi
  sleep 0.1
done
echo "slurm-cluster.sh: the node did not become idle; logs in $dir/log" >&2
stop
exit 1
