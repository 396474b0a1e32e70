#!/usr/bin/env bash
# A real single-node SLURM 22.05 cluster for the tests, on Debian bookworm, as root, without
# systemd: munge, MariaDB + slurmdbd (so sacct works), slurmctld, slurmd, fake GPUs as GRES.
# Adapted from the verified recipe in /work/shared/slurm (the project carries its own copy).
#
# Usage:  test-cluster.sh install   apt packages (once per machine, ~15-45 s)
#         test-cluster.sh start     write configs, start the daemons that are not running (~2 s)
#         test-cluster.sh stop      stop the daemons that `start` started (by pid), nothing else
#         test-cluster.sh smoke     srun, sbatch, a GPU job, sacct
#         test-cluster.sh all       install + start + smoke
# Knobs (environment):
#   WITH_ACCOUNTING=1   slurmdbd + MariaDB, so sacct works (submitit and the plugin poll sacct;
#                       without it a cancelled job's state is never known). 0 = none.
#   SLURM_CPUS=         advertise this many CPUs instead of the real count, so several one-CPU
#                       jobs run at once on a 2-core CI machine (e.g. 8)
#   FAKE_GPUS=4         fake GPUs (GRES gpu backed by /dev/null symlinks); 0 = none
#   FAKE_GPU_TYPE=fake  GRES type of the fake GPUs ("" = untyped)
#   CRED_EXPIRE=5       seconds a requeued job waits before it is eligible again (SLURM's
#                       default is 120, which would make every requeue test wait 2 minutes)
#   STATE=/run/kdprune-test-cluster.pids   pid files of the daemons this script started
# Scheduling is tuned for tests: batch_sched_delay=0,sched_min_interval=0 start a job within
# 1 s of sbatch (3 s otherwise); sched_interval=2,bf_interval=2 start a requeued job ~2 s after
# it becomes eligible (the periodic loops run every 60/30 s by default).
set -euo pipefail
WITH_ACCOUNTING="${WITH_ACCOUNTING:-1}"
SLURM_CPUS="${SLURM_CPUS:-}"
FAKE_GPUS="${FAKE_GPUS:-4}"
FAKE_GPU_TYPE="${FAKE_GPU_TYPE-fake}"
CRED_EXPIRE="${CRED_EXPIRE:-5}"
STATE="${STATE:-/run/kdprune-test-cluster.pids}"
export DEBIAN_FRONTEND=noninteractive

slurm_install() {
  # Postinst scripts call invoke-rc.d ... || exit 1; without systemd the init scripts would
  # run (and slurmctld's fails without a config), so forbid service starts during install.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  local pkgs="slurm-wlm munge"   # -> slurmctld slurmd slurm-client slurm-wlm-basic-plugins
  [ "$WITH_ACCOUNTING" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
  # Skip apt when everything is installed: repeated test sessions then start in ~2 s.
  local n_ok
  # shellcheck disable=SC2086
  n_ok=$(dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | grep -c 'install ok installed' || true)
  if [ "$n_ok" -eq "$(wc -w <<<"$pkgs")" ]; then
    [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    return 0
  fi
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

wait_for() {  # wait_for <seconds> <command...>
  local t=$1; shift
  for _ in $(seq 1 $((t * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "timed out waiting for: $*" >&2; return 1
}

started() {  # started <pid file>: remember that this script started that daemon
  echo "$1" >> "$STATE"
}

slurm_start() {
  local HOST; HOST=$(hostname -s)
  getent hosts "$HOST" >/dev/null || echo "127.0.0.1 $HOST" >> /etc/hosts
  : >> "$STATE"

  # --- munge -------------------------------------------------------------
  install -d -o munge -g munge -m 0755 /run/munge
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged        # daemonizes, writes /run/munge/munged.pid
    started /run/munge/munged.pid
  fi
  wait_for 10 sh -c 'munge -n | unmunge'

  # --- directories, fake GPU device files ------------------------------
  install -d -o slurm -g slurm /var/spool/slurmctld /var/log/slurm /run/slurm
  install -d /var/spool/slurmd
  local GRES_NODE="" GRES_TYPES="" ACCT_TRES=""
  if [ "${FAKE_GPUS:-0}" -gt 0 ]; then
    install -d /run/fakegpu
    for i in $(seq 0 $((FAKE_GPUS - 1))); do ln -sfn /dev/null /run/fakegpu/gpu$i; done
    local files="/run/fakegpu/gpu0"; [ "$FAKE_GPUS" -gt 1 ] && files="/run/fakegpu/gpu[0-$((FAKE_GPUS - 1))]"
    if [ -n "$FAKE_GPU_TYPE" ]; then
      GRES_NODE=" Gres=gpu:${FAKE_GPU_TYPE}:${FAKE_GPUS}"
      printf 'AutoDetect=off\nNodeName=%s Name=gpu Type=%s File=%s\n' "$HOST" "$FAKE_GPU_TYPE" "$files" > /etc/slurm/gres.conf
    else
      GRES_NODE=" Gres=gpu:${FAKE_GPUS}"
      printf 'AutoDetect=off\nNodeName=%s Name=gpu File=%s\n' "$HOST" "$files" > /etc/slurm/gres.conf
    fi
    GRES_TYPES="GresTypes=gpu"; ACCT_TRES="AccountingStorageTRES=gres/gpu"
  else
    rm -f /etc/slurm/gres.conf
  fi

  # --- node definition from the hardware -------------------------------
  local HW MEM NODE_HW EXTRA=""
  HW=$(slurmd -C | head -1)      # NodeName=vm CPUs=2 Boards=1 ... ThreadsPerCore=1 RealMemory=24105
  MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW"); MEM=$((MEM - 256))
  if [ -n "$SLURM_CPUS" ]; then
    NODE_HW="CPUs=$SLURM_CPUS"; EXTRA="SlurmdParameters=config_overrides"
  else
    NODE_HW=$(sed -e 's/^NodeName=[^ ]* //' -e 's/ *RealMemory=[0-9]*//' <<<"$HW")
  fi

  local ACCT="AccountingStorageType=accounting_storage/none"
  if [ "$WITH_ACCOUNTING" = 1 ]; then
    ACCT="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
$ACCT_TRES"
  fi

  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=ci
SlurmctldHost=${HOST}
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=${CRED_EXPIRE}
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
${ACCT}
InactiveLimit=0
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
Waittime=0
${EXTRA}
${GRES_TYPES}
NodeName=${HOST} ${NODE_HW} RealMemory=${MEM}${GRES_NODE} State=UNKNOWN
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=high Nodes=${HOST} MaxTime=INFINITE State=UP PriorityTier=2
EOF

  # --- accounting: MariaDB + slurmdbd -----------------------------------
  if [ "$WITH_ACCOUNTING" = 1 ]; then
    install -d -o mysql -g mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    if ! mariadb-admin ping >/dev/null 2>&1; then
      setsid -f /usr/sbin/mariadbd --user=mysql --datadir=/var/lib/mysql --skip-networking \
        --socket=/run/mysqld/mysqld.sock --pid-file=/run/mysqld/mysqld.pid \
        --innodb-buffer-pool-size=128M >/var/log/slurm/mariadb.log 2>&1 </dev/null
      started /run/mysqld/mysqld.pid
    fi
    wait_for 60 mariadb-admin ping
    mariadb -e "CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
                GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
    cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
    chown slurm:slurm /etc/slurm/slurmdbd.conf; chmod 600 /etc/slurm/slurmdbd.conf
    if ! (echo > /dev/tcp/127.0.0.1/6819) 2>/dev/null; then
      slurmdbd                                        # daemonizes
      started /run/slurm/slurmdbd.pid
    fi
    wait_for 60 bash -c 'echo > /dev/tcp/127.0.0.1/6819'
  fi

  # --- slurmctld + slurmd ------------------------------------------------
  if ! scontrol ping 2>/dev/null | grep -q UP; then
    slurmctld                                         # daemonizes (runs as SlurmUser)
    started /run/slurm/slurmctld.pid
  fi
  wait_for 60 sh -c 'scontrol ping | grep -q UP'
  if ! [ -s /run/slurm/slurmd.pid ] || ! kill -0 "$(cat /run/slurm/slurmd.pid)" 2>/dev/null; then
    slurmd                                            # daemonizes (root)
    started /run/slurm/slurmd.pid
  fi
  wait_for 60 sh -c "sinfo -h -n $HOST -o %t | grep -Eq '^(idle|mix|alloc)$'"
  sinfo
}

slurm_stop() {
  # Only the daemons this script started, newest first (slurmd before slurmctld before the
  # database before munge), each by the pid in its pid file.
  [ -s "$STATE" ] || return 0
  local f pid
  for f in $(tac "$STATE"); do
    [ -s "$f" ] || continue
    pid=$(cat "$f")
    if kill "$pid" 2>/dev/null; then   # wait until gone (a zombie counts as gone)
      for _ in $(seq 1 100); do
        case "$(ps -o stat= -p "$pid" 2>/dev/null)" in ""|Z*) break ;; esac; sleep 0.1
      done
    fi
  done
  rm -f "$STATE"
}

slurm_smoke() {
  srun -n1 hostname
  sbatch --wait -o /dev/null --wrap 'true'
  [ "${FAKE_GPUS:-0}" -gt 0 ] && srun --gpus=1 printenv CUDA_VISIBLE_DEVICES
  [ "$WITH_ACCOUNTING" = 1 ] && sacct -X -n -o JobID,State | tail -3
  return 0
}

case "${1:-all}" in
  install) slurm_install ;;
  start)   slurm_start ;;
  stop)    slurm_stop ;;
  smoke)   slurm_smoke ;;
  all)     slurm_install; slurm_start; slurm_smoke ;;
  *) echo "usage: $0 install|start|stop|smoke|all" >&2; exit 2 ;;
esac
