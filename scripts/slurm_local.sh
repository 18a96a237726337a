#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for testing job arrays end to end.
#
#   scripts/slurm_local.sh start DIR   # install Slurm and MUNGE if missing, start the daemons
#   scripts/slurm_local.sh stop DIR    # stop them (by the PIDs in DIR), print nothing else
#   scripts/slurm_local.sh logs DIR    # print the daemons' logs
#
# Everything lives in DIR: slurm.conf, the MUNGE key and socket, state and spool folders, PID
# files and logs. Clients find the cluster with `SLURM_CONF=DIR/slurm.conf` (DIR/env exports
# it). Needs root (the daemons run as root, `SlurmUser=root`); Debian's packages slurmctld,
# slurmd, slurm-client and munge are installed with apt-get when missing. Exit status 3: this
# machine cannot run the cluster (not root, or no apt-get to install it), with the reason on
# stderr. The daemons are started directly (no systemd); the node is up within seconds.
#
# Ports: SLURM_LOCAL_CTLD_PORT (default 6817) and SLURM_LOCAL_SLURMD_PORT (default 6818).
set -euo pipefail

usage() {
    echo "usage: $0 start|stop|logs DIR" >&2
    exit 2
}
[[ $# -eq 2 ]] || usage
action=$1
dir=$2

cannot() {
    echo "slurm_local: cannot run a local Slurm cluster here: $*" >&2
    exit 3
}

ensure_installed() {
    local missing=()
    for cmd in slurmctld slurmd sbatch munged mungekey; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    [[ $(id -u) -eq 0 ]] || cannot "${missing[*]} missing, and installing them needs root"
    command -v apt-get >/dev/null 2>&1 || cannot "${missing[*]} missing, and there is no apt-get"
    echo "slurm_local: installing slurmctld slurmd slurm-client munge with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >&2
}

# Waits up to $1 seconds for `$2...` to succeed.
wait_for() {
    local seconds=$1
    shift
    local i
    for ((i = 0; i < seconds * 5; i++)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}

print_logs() {
    local log
    for log in "$dir"/log/*.log; do
        [[ -f "$log" ]] || continue
        echo "===== $log" >&2
        tail -n 60 "$log" >&2
    done
}

stop_pid_file() {
    local file=$1 pid i
    [[ -f "$file" ]] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

start() {
    [[ $(id -u) -eq 0 ]] || cannot "the daemons run as root (SlurmUser=root); this is uid $(id -u)"
    ensure_installed
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir"/{munge,state,spool,log,run}
    chmod 700 "$dir/munge"

    local host cpus mem_kb mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    # A bit less than the machine has, so that slurmd's own measure is never below it.
    mem_mb=$((mem_kb / 1024 * 9 / 10))

    local key="$dir/munge/munge.key" socket="$dir/munge/munge.socket"
    [[ -f "$key" ]] || mungekey --create --keyfile="$key" 2>/dev/null ||
        dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
    chmod 400 "$key"
    munged --force --key-file="$key" --socket="$socket" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
        --seed-file="$dir/munge/munge.seed"
    wait_for 10 test -S "$socket" || {
        print_logs
        cannot "munged did not start"
    }

    cat >"$dir/slurm.conf" <<EOF
ClusterName=imagenetx-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=${SLURM_LOCAL_CTLD_PORT:-6817}
SlurmdPort=${SLURM_LOCAL_SLURMD_PORT:-6818}
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$dir/env" <<EOF
export SLURM_CONF=$dir/slurm.conf
EOF
    export SLURM_CONF="$dir/slurm.conf"
    # -c: no state from an earlier cluster in the same folder; -i: ignore state errors.
    slurmctld -c -i -f "$SLURM_CONF" || {
        print_logs
        cannot "slurmctld did not start"
    }
    wait_for 20 scontrol ping || {
        print_logs
        cannot "slurmctld does not answer (scontrol ping)"
    }
    slurmd -f "$SLURM_CONF" -N "$host" || {
        print_logs
        cannot "slurmd did not start"
    }
    if ! wait_for 30 node_ready "$host"; then
        scontrol show node "$host" >&2 || true
        print_logs
        cannot "node $host did not become idle"
    fi
    echo "slurm_local: one-node cluster up: node $host, $cpus CPUs, ${mem_mb} MB; SLURM_CONF=$SLURM_CONF" >&2
}

node_ready() {
    local state
    state=$(sinfo -h -n "$1" -o %T 2>/dev/null | head -n 1)
    [[ "$state" == idle* || "$state" == mixed* || "$state" == allocated* ]]
}

stop() {
    dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
    stop_pid_file "$dir/run/slurmd.pid"
    stop_pid_file "$dir/run/slurmctld.pid"
    stop_pid_file "$dir/run/munged.pid"
}

case "$action" in
start) start ;;
stop) stop ;;
logs) print_logs ;;
*) usage ;;
esac
