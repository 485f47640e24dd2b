#!/usr/bin/env bash
# A single-host Slurm cluster for the test suite: munge, MariaDB, slurmdbd, slurmctld and two
# slurmd (nodes n1, n2) with two fake GPUs each, all state under BASE.
#
#   cluster.sh up BASE     start it; prints `SLURM_CONF=<path>` on stdout when ready
#   cluster.sh down BASE   cancel jobs, stop every daemon it started, in reverse order
#
# Needs root and Debian's munge, slurmctld, slurmd, slurm-client, slurmdbd and mariadb-server
# (see .ci/install-deps). Every wait is bounded; nothing sleeps a fixed time. One cluster per
# machine (fixed ports, the global munge key).
set -euo pipefail

cmd=${1:-}
BASE=${2:-}
if [[ -z $cmd || -z $BASE ]]; then
    echo "usage: $0 up|down BASE" >&2
    exit 2
fi
if [[ $cmd == up ]]; then
    mkdir -p "$BASE"
elif [[ ! -d $BASE ]]; then
    exit 0 # nothing was started there
fi
BASE=$(cd "$BASE" && pwd)
export SLURM_CONF=$BASE/etc/slurm.conf
NODES=(n1 n2)
PIDS=$BASE/run/pids # one `name pid` per line, in start order
ACTIVE=/tmp/cardfill-slurm.active # the base of the cluster running on this machine

log() { echo "cluster: $*" >&2; }

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s until it succeeds.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${limit}s waiting for $what"
            return 1
        fi
        sleep 0.2
    done
}

alive() { # a pid that exists and is not a zombie
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# start NAME LOG COMMAND...: runs COMMAND detached (own session, no inherited pipes).
start() {
    local name=$1 logfile=$2
    shift 2
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    echo "$name $!" >>"$PIDS"
}

stop_all() {
    [[ -f $PIDS ]] || return 0
    if [[ -f $SLURM_CONF ]] && command -v scancel >/dev/null; then
        timeout 10 scancel --user=root >/dev/null 2>&1 || true
        local deadline=$((SECONDS + 15))
        while ((SECONDS < deadline)); do
            local jobs
            jobs=$(timeout 5 squeue -h -t PD,R,CG,S -o %i 2>/dev/null) || break
            [[ -z $jobs ]] && break
            sleep 0.2
        done
    fi
    local name pid
    tac "$PIDS" | while read -r name pid; do
        alive "$pid" || continue
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        if alive "$pid"; then
            log "$name ($pid) ignored SIGTERM, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    # slurmstepd of killed jobs would otherwise outlive their slurmd.
    pkill_stepd
    rm -f "$PIDS"
}

pkill_stepd() {
    local pid
    for pid in $(pgrep -x slurmstepd 2>/dev/null || true); do
        if tr '\0' ' ' <"/proc/$pid/environ" 2>/dev/null | grep -q "SLURM_CONF=$SLURM_CONF"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

write_config() {
    local user=root
    mkdir -p "$BASE"/{etc,log,run,state,dev,mysql,mysqlrun}
    for n in "${NODES[@]}"; do mkdir -p "$BASE/spool/slurmd.$n"; done
    for i in 0 1; do
        # Character devices (/dev/null's numbers) make slurmd set CUDA_VISIBLE_DEVICES; where
        # mknod is not allowed, plain files still give the GPU counts.
        if [[ ! -e $BASE/dev/nvidia$i ]] && ! mknod -m 666 "$BASE/dev/nvidia$i" c 1 3 2>/dev/null; then
            log "mknod not allowed: fake GPUs are plain files (no CUDA_VISIBLE_DEVICES)"
            : >"$BASE/dev/nvidia$i"
        fi
    done
    cat >"$SLURM_CONF" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
MinJobAge=3600
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/linux
ReturnToService=2
InactiveLimit=0
KillWait=5
Waittime=0
SlurmctldPort=16817
StateSaveLocation=$BASE/state
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdParameters=config_overrides
SlurmdSpoolDir=$BASE/spool/slurmd.%n
SlurmdLogFile=$BASE/log/slurmd.%n.log
SlurmdPidFile=$BASE/run/slurmd.%n.pid
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=16819
AccountingStorageTRES=gres/gpu
GresTypes=gpu
NodeName=n1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=16901 CPUs=2 RealMemory=1000 Gres=gpu:2
NodeName=n2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=16902 CPUs=2 RealMemory=1000 Gres=gpu:2
PartitionName=debug Nodes=n[1-2] Default=YES MaxTime=INFINITE State=UP
CONF
    cat >"$BASE/etc/gres.conf" <<CONF
AutoDetect=off
NodeName=n[1-2] Name=gpu File=$BASE/dev/nvidia[0-1]
CONF
    cat >"$BASE/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdPort=16819
SlurmUser=$user
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=16806
StorageUser=slurm
StoragePass=cardfill-ci
StorageLoc=slurm_acct_db
LogFile=$BASE/log/slurmdbd.log
PidFile=$BASE/run/slurmdbd.pid
CONF
    chmod 600 "$BASE/etc/slurmdbd.conf"
}

munge_ok() { munge -n | unmunge; }

up() {
    if [[ $(id -u) != 0 ]]; then
        log "needs root"
        exit 3
    fi
    for tool in munged munge slurmctld slurmd slurmdbd sbatch sacct mariadbd mariadb-install-db; do
        if ! command -v "$tool" >/dev/null; then
            log "missing $tool (install munge slurmctld slurmd slurm-client slurmdbd mariadb-server)"
            exit 3
        fi
    done
    # A cluster left behind by an interrupted run (here or in another base): stop it first.
    if [[ -s $ACTIVE ]]; then
        local old
        old=$(cat "$ACTIVE")
        if [[ $old != "$BASE" && -f $old/run/pids ]]; then
            log "stopping the cluster left in $old"
            bash "$0" down "$old" || true
        fi
    fi
    stop_all
    echo "$BASE" >"$ACTIVE"
    mkdir -p "$BASE/run"
    : >"$PIDS"
    write_config

    # munge: reuse a running munged, else start one.
    if ! munge_ok >/dev/null 2>&1; then
        if [[ ! -s /etc/munge/munge.key ]]; then
            mungekey -c -f -k /etc/munge/munge.key
            chown munge:munge /etc/munge/munge.key
            chmod 600 /etc/munge/munge.key
        fi
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        start munged "$BASE/log/munged.log" \
            setpriv --reuid=munge --regid=munge --init-groups munged -F
        wait_for 20 munged munge_ok
    fi

    # MariaDB for slurmdbd (sacct needs accounting).
    chown mysql:mysql "$BASE/mysql" "$BASE/mysqlrun"
    if [[ ! -d $BASE/mysql/mysql ]]; then
        mariadb-install-db --no-defaults --user=mysql --datadir="$BASE/mysql" \
            --auth-root-authentication-method=socket --skip-test-db >"$BASE/log/mariadb-install.log" 2>&1
    fi
    local sock=$BASE/mysqlrun/mysqld.sock
    start mariadbd "$BASE/log/mariadbd.log" mariadbd --no-defaults --user=mysql \
        --datadir="$BASE/mysql" --socket="$sock" --port=16806 --bind-address=127.0.0.1 \
        --skip-name-resolve --pid-file="$BASE/mysqlrun/mariadbd.pid"
    wait_for 60 mariadbd mariadb -S "$sock" -uroot -e 'select 1'
    mariadb -S "$sock" -uroot <<'SQL'
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'cardfill-ci';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'cardfill-ci';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

    start slurmdbd "$BASE/log/slurmdbd.out" slurmdbd -D
    wait_for 60 slurmdbd timeout 5 sacctmgr -n show cluster
    start slurmctld "$BASE/log/slurmctld.out" slurmctld -D -i -f "$SLURM_CONF"
    wait_for 60 slurmctld timeout 5 scontrol ping
    for n in "${NODES[@]}"; do
        start "slurmd-$n" "$BASE/log/slurmd-$n.out" slurmd -D -f "$SLURM_CONF" -N "$n"
    done
    nodes_idle() {
        [[ $(timeout 5 sinfo -h -N -o %T | grep -c '^idle$') == "${#NODES[@]}" ]]
    }
    wait_for 60 "${#NODES[@]} idle nodes" nodes_idle
    registered() { timeout 5 sacctmgr -n -P show cluster format=cluster | grep -qx ci; }
    wait_for 60 "cluster ci in the accounting database" registered
    echo "SLURM_CONF=$SLURM_CONF"
}

case $cmd in
up)
    if ! up; then
        log "start failed; logs in $BASE/log"
        stop_all
        exit 1
    fi
    ;;
down)
    stop_all
    if [[ -f $ACTIVE && $(cat "$ACTIVE") == "$BASE" ]]; then rm -f "$ACTIVE"; fi
    ;;
*)
    echo "usage: $0 up|down BASE" >&2
    exit 2
    ;;
esac
