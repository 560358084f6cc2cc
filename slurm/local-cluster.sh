#!/usr/bin/env bash
# A one-node SLURM cluster on localhost, for the dispatch tests and for trying sweeps on a laptop.
#   slurm/local-cluster.sh start   install (Debian packages) and start munge, MariaDB, slurmdbd, slurmctld, slurmd
#   slurm/local-cluster.sh stop    cancel queued jobs and stop the daemons this script started
#   slurm/local-cluster.sh status  sinfo
# Idempotent: a start with everything up is a no-op. Needs root. MariaDB + slurmdbd are there for
# sacct: without accounting, cancelled or killed jobs never leave the UNKNOWN state in submitit.
# State, logs and pid files: $SLURM_LOCAL_BASE (default /var/tmp/unlearning-bench-slurm).
set -euo pipefail
BASE=${SLURM_LOCAL_BASE:-/var/tmp/unlearning-bench-slurm}
PART=${SLURM_LOCAL_PARTITION:-debug}
MYPORT=${SLURM_LOCAL_MYSQL_PORT:-3307}
CLUSTER=benchcluster
RUN=$BASE/run LOG=$BASE/log STATE=$BASE/state
CONF=/etc/slurm/slurm.conf DBDCONF=/etc/slurm/slurmdbd.conf
MYSOCK=$RUN/mysql/mysqld.sock
export DEBIAN_FRONTEND=noninteractive

log() { printf '[local-cluster %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { log "ERROR: $*"; exit 1; }
alive() {  # alive NAME COMM: our pid file names a live process called COMM
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(cat "$f"); [ -d /proc/"$pid" ] && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ]
}
stop_one() {
  local f=$RUN/$1.pid pid i
  if alive "$1" "$2"; then
    pid=$(cat "$f"); kill "$pid" 2>/dev/null || true
    for i in $(seq 1 75); do [ -d /proc/"$pid" ] || break; sleep 0.2; done
    [ -d /proc/"$pid" ] && kill -9 "$pid" 2>/dev/null || true
    log "stopped $1"
  fi
  rm -f "$f"
}
wait_for() {  # wait_for SECONDS WHAT CMD...
  local secs=$1 what=$2 i; shift 2
  for i in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out after ${secs}s waiting for $what (logs: $LOG)"
}

install() {
  local p missing="" own_policy=0
  for p in munge slurmctld slurmd slurm-client slurmdbd slurm-wlm-mysql-plugin mariadb-server; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  log "apt-get install:$missing"
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # no systemd here: keep init scripts from starting daemons
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; own_policy=1
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

configure() {  # prints 1 if a config file changed
  mkdir -p "$RUN" "$LOG" "$STATE/ctld" "$STATE/d" /etc/slurm
  NODE=$(hostname -s)
  getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >> /etc/hosts
  local mem_mb changed=0
  mem_mb=$(awk '/MemTotal/ {print int($2/1024*0.9)}' /proc/meminfo)  # above the real amount drains the node
  local conf="ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PART Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
  local dbd="AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYPORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db"
  [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$conf" ] || { printf '%s\n' "$conf" > "$CONF"; changed=1; }
  [ -f "$DBDCONF" ] && [ "$(cat "$DBDCONF")" = "$dbd" ] || { printf '%s\n' "$dbd" > "$DBDCONF"; changed=1; }
  chmod 600 "$DBDCONF"  # slurmdbd refuses a readable file holding a password
  echo $changed
}

node_ready() { sinfo -h -n "$(hostname -s)" -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)$'; }

start() {
  [ "$(id -u)" = 0 ] || die "must run as root"
  install
  local changed; changed=$(configure)
  if [ "$changed" = 0 ] && alive munged munged && alive mysqld mariadbd && alive slurmdbd slurmdbd \
     && alive slurmctld slurmctld && alive slurmd slurmd && node_ready; then
    log "already running"; return 0
  fi
  if [ "$changed" = 1 ]; then stop_one slurmd slurmd; stop_one slurmctld slurmctld; stop_one slurmdbd slurmdbd; fi
  # munge
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key
  fi
  if ! alive munged munged && ! (munge -n 2>/dev/null | unmunge >/dev/null 2>&1); then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    wait_for 10 munged test -s /run/munge/munged.pid
    cp /run/munge/munged.pid "$RUN/munged.pid"
  fi
  munge -n | unmunge >/dev/null || die "munge does not work"
  # MariaDB for slurmdbd, in our own datadir, as the mysql user (with directories it owns)
  mkdir -p "$RUN/mysql" "$LOG/mysql"; chown mysql:mysql "$RUN/mysql" "$LOG/mysql"
  if [ ! -d "$BASE/mysql/mysql" ]; then
    rm -rf "$BASE/mysql"; mkdir -p "$BASE/mysql"; chown mysql:mysql "$BASE/mysql"
    mariadb-install-db --user=mysql --datadir="$BASE/mysql" --auth-root-authentication-method=socket \
      --skip-test-db > "$LOG/mysql-install.log" 2>&1 || die "mariadb-install-db failed: $LOG/mysql-install.log"
  fi
  if ! alive mysqld mariadbd; then
    setsid mariadbd --user=mysql --datadir="$BASE/mysql" --socket="$MYSOCK" --port="$MYPORT" \
      --bind-address=127.0.0.1 --pid-file="$RUN/mysql/mysqld.pid" --log-error="$LOG/mysql/mysqld.log" \
      --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
    wait_for 60 mariadb mariadb-admin --socket="$MYSOCK" ping
    wait_for 10 "mariadb pid" test -s "$RUN/mysql/mysqld.pid"
    cp "$RUN/mysql/mysqld.pid" "$RUN/mysqld.pid"
  fi
  mariadb --socket="$MYSOCK" -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmpw';
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  if ! alive slurmdbd slurmdbd; then
    rm -f "$RUN/slurmdbd.pid"; slurmdbd
    wait_for 60 slurmdbd sacctmgr -n list cluster
  fi
  sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
  if ! alive slurmctld slurmctld; then
    rm -f "$RUN/slurmctld.pid"; slurmctld -i
    wait_for 30 slurmctld scontrol ping
  fi
  if ! alive slurmd slurmd; then
    rm -f "$RUN/slurmd.pid"; slurmd -N "$(hostname -s)"
    wait_for 30 slurmd test -s "$RUN/slurmd.pid"
  fi
  local i
  for i in $(seq 1 150); do
    node_ready && { log "cluster ready: partition $PART, node $(hostname -s), $(nproc) CPUs"; return 0; }
    case "$(sinfo -h -n "$(hostname -s)" -o %T 2>/dev/null)" in
      down*|drain*) scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.2
  done
  die "node never became idle; see $LOG/slurmctld.log and $LOG/slurmd.log"
}

stop() {
  if alive slurmctld slurmctld; then
    local ids; ids=$(squeue -h -o %A 2>/dev/null | sort -u)
    [ -n "$ids" ] && scancel $ids 2>/dev/null || true
  fi
  stop_one slurmd slurmd; stop_one slurmctld slurmctld; stop_one slurmdbd slurmdbd
  stop_one mysqld mariadbd; stop_one munged munged
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
