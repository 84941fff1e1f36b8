#!/usr/bin/env bash
# local-slurm.sh: a one-node Slurm cluster (munged + slurmctld + slurmd) on this
# machine, for the test suite and for trying hpcneuro's job scripts on a laptop.
#
#   scripts/local-slurm.sh start     install what is missing, start, wait until idle
#   scripts/local-slurm.sh stop      stop the daemons this script started
#   scripts/local-slurm.sh status    daemons and sinfo; exit 0 only if all are up
#   scripts/local-slurm.sh env       export lines: eval "$(scripts/local-slurm.sh env)"
#
# Needs root (it installs packages, runs munged as user munge and slurmd as root).
# Works without systemd: the daemons are started directly and tracked with pid
# files in the state directory. See --help for details.

set -euo pipefail

# --------------------------------------------------------------------------
# Settings (environment overrides)
# --------------------------------------------------------------------------
STATE_DIR="${HPCNEURO_SLURM_DIR:-/tmp/hpcneuro-slurm}"
START_TIMEOUT="${HPCNEURO_SLURM_TIMEOUT:-60}"   # seconds to wait for an idle node
VERBOSE="${HPCNEURO_SLURM_VERBOSE:-0}"

CONF="$STATE_DIR/slurm.conf"
CTLD_PID="$STATE_DIR/slurmctld.pid"
SLURMD_PID="$STATE_DIR/slurmd.pid"
MUNGED_PID="$STATE_DIR/munged.pid"   # only written when this script started munged
LOG_DIR="$STATE_DIR/log"
NODE=localhost
PARTITION=debug

# The Slurm client commands must read our slurm.conf, not /etc/slurm/slurm.conf.
export SLURM_CONF="$CONF"

PROG="$(basename "$0")"

usage() {
    cat <<EOF
Usage: $PROG start|stop|status|env [--verbose]

A one-node Slurm cluster on this machine (node '$NODE', partition '$PARTITION'),
for tests and for trying job scripts. Must run as root. No systemd needed.

Commands:
  start   Install slurm-wlm and munge with apt-get if missing, create a munge key
          if absent, write slurm.conf and the state/spool/log folders under the
          state directory, start munged, slurmctld and slurmd if they are not
          running, and wait until 'sinfo' shows the node idle. Does nothing when
          everything is already up. Quiet unless something fails.
  stop    Stop the daemons this script started (found by their pid files in the
          state directory). munged is only stopped if this script started it.
  status  Print whether each daemon runs, then 'sinfo'. Exit 0 if all are up.
  env     Print the export lines a shell needs to use this cluster:
              eval "\$($PROG env)"
              sbatch --wrap 'hostname'

Environment:
  HPCNEURO_SLURM_DIR      state directory (default /tmp/hpcneuro-slurm); holds
                          slurm.conf, pid files, logs (log/), slurmctld state
                          (state/) and slurmd spool (spool/)
  HPCNEURO_SLURM_TIMEOUT  seconds 'start' waits for the node to be idle (default 60)
  HPCNEURO_SLURM_VERBOSE  1 to print what 'start'/'stop' do (same as --verbose)

Notes:
  - No accounting database: 'sacct' does not work here; use 'squeue' and
    'scontrol show job ID' (finished jobs stay visible for MinJobAge seconds).
  - Jobs may be requeued (JobRequeue=1); a requeued job waits 10 s
    (AuthInfo=cred_expire) before it starts again.
  - Warning signals work, e.g. sbatch --time=00:05:00 --signal=B:USR1@60, but
    slurmctld checks time limits only every 30 s: a warning may come up to
    ~30 s later (or a little earlier) than asked, and a job is killed up to
    ~30 s after its time limit.
  - MPI inside a job: 'mpiexec -n N' (MPICH hydra) and 'srun' (MpiDefault=pmi2).
EOF
}

say() { if [ "$VERBOSE" = 1 ]; then echo "local-slurm: $*" >&2; fi; }
die() { echo "local-slurm: error: $*" >&2; exit 1; }
# fail MESSAGE: die, showing the daemon logs after the message.
fail() { echo "local-slurm: error: $*" >&2; show_logs; exit 1; }

# proc_alive PID NAME: true if process PID runs and is called NAME.
proc_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/comm" ] || return 1
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] || return 1
    # A zombie (exited, not yet reaped: PID 1 may never reap it here) is gone.
    ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# pid_alive PIDFILE NAME: true if PIDFILE names a live process called NAME.
pid_alive() {
    local pid
    # (the daemon may remove its pid file while we read it)
    pid="$(tr -dc '0-9' 2>/dev/null <"$1")" || return 1
    proc_alive "$pid" "$2"
}

pid_of() { tr -dc '0-9' 2>/dev/null <"$1" || true; }

# munge_works: a credential can be created and decoded, i.e. some munged serves
# the default socket (ours or one started by someone else, e.g. systemd).
munge_works() {
    command -v munge >/dev/null && munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

# node_state: the node state as sinfo reports it ("idle", "down*", ...), or "".
node_state() {
    timeout 10 sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1 || true
}

# show_logs: the last lines of every daemon log, for error messages.
show_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        if [ -s "$f" ]; then
            echo "----- tail $f -----" >&2
            tail -n 20 "$f" >&2
        fi
    done
    if sinfo -R >/dev/null 2>&1; then
        echo "----- sinfo -R (reasons for down/drained nodes) -----" >&2
        sinfo -R >&2 || true
    fi
}

need_root() { [ "$(id -u)" = 0 ] || die "'$1' needs root (it manages system daemons)"; }

# --------------------------------------------------------------------------
# start: packages, munge, slurm.conf, daemons
# --------------------------------------------------------------------------
install_packages() {
    local missing=() cmd
    for cmd in slurmctld slurmd sinfo sbatch; do
        command -v "$cmd" >/dev/null || { missing+=(slurm-wlm); break; }
    done
    for cmd in munged munge unmunge; do
        command -v "$cmd" >/dev/null || { missing+=(munge); break; }
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    say "installing ${missing[*]} with apt-get"
    mkdir -p "$LOG_DIR"
    local aptlog="$LOG_DIR/apt.log"
    # Without systemd the packages' post-install scripts cannot start the
    # services (and must not: we start our own). Debian's policy-rc.d hook
    # (exit 101 = "do not start") keeps them quiet; add it only for the
    # install if the machine does not already have one.
    local added_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
    } >"$aptlog" 2>&1 || rc=$?
    if [ "$added_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    if [ "$rc" -ne 0 ]; then
        tail -n 30 "$aptlog" >&2
        die "apt-get install ${missing[*]} failed (full log: $aptlog)"
    fi
}

# prepare_munge: key and ownership as munged insists on (it refuses to run
# with group/world-writable or wrongly owned folders).
prepare_munge() {
    id munge >/dev/null 2>&1 || die "user 'munge' does not exist (is the munge package installed?)"
    mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key --force
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        fi
    fi
    chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
    chmod 0700 /etc/munge /var/log/munge
    chmod 0711 /var/lib/munge
    chmod 0755 /run/munge
    chmod 0400 /etc/munge/munge.key
}

start_munged() {
    if munge_works; then
        say "munged already serves credentials"
        return 0
    fi
    prepare_munge
    say "starting munged"
    rm -f /run/munge/munged.pid
    # munged daemonises itself and must run as the munge user.
    # 9>&-: the daemon must not inherit (and so hold forever) our lock.
    runuser -u munge -- /usr/sbin/munged 9>&- ||
        fail "munged failed to start"
    local i
    for i in $(seq 50); do
        munge_works && break
        sleep 0.1
    done
    munge_works || fail "munged started but 'munge -n | unmunge' fails"
    # Remember that we started it, so that 'stop' may stop it (and only then).
    if [ -s /run/munge/munged.pid ]; then
        cp /run/munge/munged.pid "$MUNGED_PID"
    fi
}

# write_conf: (re)write slurm.conf; returns 0 if the content changed.
write_conf() {
    local cpus mem_mb real_mem tmp hw topo=""
    # nproc obeys OMP_NUM_THREADS: a caller with OMP_NUM_THREADS=1 must not shrink the node
    cpus="$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)"
    mem_mb="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
    # slurmd -C prints what slurmd finds, e.g. "NodeName=vm CPUs=2 Boards=1
    # SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105".
    # Use its layout (else slurmd logs a socket/core mismatch) unless this
    # process may use fewer CPUs than the machine has (affinity, containers).
    hw="$(slurmd -C 2>/dev/null | head -n1 || true)"
    if [[ "$hw" =~ CPUs=([0-9]+)\ (Boards=.*ThreadsPerCore=[0-9]+) ]] &&
       [ "${BASH_REMATCH[1]}" = "$cpus" ]; then
        topo=" ${BASH_REMATCH[2]}"
    fi
    # A bit under the machine's memory: slurmd drains a node whose RealMemory
    # is larger than what it finds.
    real_mem=$(( mem_mb * 95 / 100 ))
    tmp="$(mktemp "$STATE_DIR/slurm.conf.XXXXXX")"
    cat >"$tmp" <<EOF
# slurm.conf written by scripts/local-slurm.sh: a one-node Slurm for tests.
# Do not edit: 'start' rewrites it (and restarts the daemons if it changed).
ClusterName=hpcneuro-local
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire (default 120 s, minimum 5) is also how long a requeued job waits
# before it may start again; 10 s keeps requeue tests short.
AuthInfo=cred_expire=10

# Folders and files, all under the state directory
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true

# No cgroups (no systemd here): track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# CPUs and memory are consumable, so several small jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
# Jobs that do not ask for memory get this much per CPU (MB), so that a job
# without --mem does not take the whole node.
DefMemPerCPU=$(( real_mem / cpus ))
# 'srun ./mpi_program' starts MPICH ranks through PMI2 (checked with Debian's
# MPICH 4.0.2); 'mpiexec -n N' inside an allocation works as well.
MpiDefault=pmi2

# No accounting database: 'sacct' is NOT available on this cluster; use
# 'squeue' and 'scontrol show job ID' instead.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none

# Requeue-friendly: batch jobs may be requeued (scontrol requeue, or by the
# job itself when it gets its walltime warning, e.g. --signal=B:USR1@60).
JobRequeue=1
# A node coming back (e.g. after a restart of slurmd) is usable at once.
ReturnToService=2

# Fast turnaround for tests: jobs start right after submission, killed jobs
# get KillWait seconds between SIGTERM and SIGKILL, finished jobs stay visible
# to 'scontrol show job' for MinJobAge seconds.
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,bf_interval=1
KillWait=5
MinJobAge=120
InactiveLimit=0
SlurmdTimeout=60
MessageTimeout=10
UnkillableStepTimeout=60

NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus$topo RealMemory=$real_mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    if [ -f "$CONF" ] && cmp -s "$tmp" "$CONF"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$CONF"
    chmod 0644 "$CONF"
    return 0
}

# other_daemon NAME PIDFILE: print the pid of a NAME process that is not ours.
other_daemon() {
    local ours="" pid
    pid_alive "$2" "$1" && ours="$(pid_of "$2")"
    # Zombies do not count: without a real init (containers) the short-lived
    # parents of daemonising processes linger as <defunct> entries.
    while read -r pid stat; do
        case "$stat" in Z*) continue ;; esac
        [ "$pid" = "$ours" ] || { echo "$pid"; return 0; }
    done < <(ps -C "$1" -o pid=,stat= 2>/dev/null || true)
    return 1
}

stop_daemon() {  # stop_daemon NAME PIDFILE
    local pid i
    if pid_alive "$2" "$1"; then
        pid="$(pid_of "$2")"
        say "stopping $1 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        # Wait for the process itself, not its pid file: slurmd removes the
        # file early and finishes shutting down seconds later; a new daemon
        # started meanwhile would lose its pid file to the old one.
        for i in $(seq 200); do
            proc_alive "$pid" "$1" || break
            sleep 0.1
        done
        if proc_alive "$pid" "$1"; then
            say "$1 ignores SIGTERM, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 50); do
                proc_alive "$pid" "$1" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$2"
}

# wait_pidfile NAME PIDFILE: a daemonising process returns before its child
# writes the pid file; give it up to 10 s.
wait_pidfile() {
    local i
    for i in $(seq 100); do
        pid_alive "$2" "$1" && return 0
        sleep 0.1
    done
    fail "$1 did not start (no live process in $2)"
}

cmd_start() {
    need_root start
    mkdir -p "$STATE_DIR"
    # One 'start'/'stop' at a time (tests may start the cluster concurrently).
    exec 9>"$STATE_DIR/.lock"
    flock -w 300 9 || die "another $PROG holds $STATE_DIR/.lock"

    install_packages
    mkdir -p "$STATE_DIR/state" "$STATE_DIR/spool" "$LOG_DIR"

    # Someone else's Slurm would fight ours for ports 6817/6818.
    local pid
    if pid="$(other_daemon slurmctld "$CTLD_PID")"; then
        die "a slurmctld not started from $STATE_DIR runs (pid $pid); stop it or set HPCNEURO_SLURM_DIR to its state directory"
    fi
    if pid="$(other_daemon slurmd "$SLURMD_PID")"; then
        die "a slurmd not started from $STATE_DIR runs (pid $pid); stop it or set HPCNEURO_SLURM_DIR to its state directory"
    fi

    start_munged

    if write_conf; then
        # New or changed configuration: running daemons must pick it up.
        say "wrote $CONF"
        stop_daemon slurmd "$SLURMD_PID"
        stop_daemon slurmctld "$CTLD_PID"
    fi

    if ! pid_alive "$CTLD_PID" slurmctld; then
        say "starting slurmctld"
        # Daemonises; keeps jobs and state from $STATE_DIR/state across restarts.
        slurmctld -f "$CONF" >>"$LOG_DIR/slurmctld.out" 2>&1 9>&- ||
            fail "slurmctld failed to start"
        wait_pidfile slurmctld "$CTLD_PID"
    fi
    if ! pid_alive "$SLURMD_PID" slurmd; then
        say "starting slurmd"
        # -N: our node is called localhost whatever the machine's hostname is.
        slurmd -f "$CONF" -N "$NODE" >>"$LOG_DIR/slurmd.out" 2>&1 9>&- ||
            fail "slurmd failed to start"
        wait_pidfile slurmd "$SLURMD_PID"
    fi

    # Wait until the controller answers and the node is ready for jobs.
    local deadline=$(( SECONDS + START_TIMEOUT )) state=""
    while :; do
        state="$(node_state)"
        case "$state" in
            idle|mixed|allocated|completing) break ;;
        esac
        if [ $SECONDS -ge $deadline ]; then
            fail "node '$NODE' is not idle after ${START_TIMEOUT}s (state: '${state:-no answer}')"
        fi
        for pid in slurmctld:"$CTLD_PID" slurmd:"$SLURMD_PID"; do
            pid_alive "${pid#*:}" "${pid%%:*}" ||
                fail "${pid%%:*} exited during start-up"
        done
        sleep 0.5
    done
    say "node $NODE is $state"
}

cmd_stop() {
    need_root stop
    [ -d "$STATE_DIR" ] || return 0
    exec 9>"$STATE_DIR/.lock"
    flock -w 300 9 || die "another $PROG holds $STATE_DIR/.lock"
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$CTLD_PID"
    stop_daemon munged "$MUNGED_PID"
}

cmd_status() {
    local ok=0 name file
    for name in slurmctld slurmd; do
        [ "$name" = slurmctld ] && file="$CTLD_PID" || file="$SLURMD_PID"
        if pid_alive "$file" "$name"; then
            echo "$name: running (pid $(pid_of "$file"))"
        else
            echo "$name: not running"; ok=1
        fi
    done
    if munge_works; then
        if pid_alive "$MUNGED_PID" munged; then
            echo "munged: running (pid $(pid_of "$MUNGED_PID"))"
        else
            echo "munged: running (not started by $PROG)"
        fi
    else
        echo "munged: not running"; ok=1
    fi
    echo "SLURM_CONF=$CONF"
    if [ -f "$CONF" ] && command -v sinfo >/dev/null && timeout 10 sinfo 2>&1; then
        :
    else
        echo "sinfo: no answer"; ok=1
    fi
    return $ok
}

cmd_env() {
    # %q quotes paths with spaces or other shell characters.
    printf 'export SLURM_CONF=%q\n' "$CONF"
    printf 'export HPCNEURO_SLURM_DIR=%q\n' "$STATE_DIR"
}

# --------------------------------------------------------------------------
main() {
    local cmd=""
    while [ $# -gt 0 ]; do
        case "$1" in
            -h|--help|help) usage; exit 0 ;;
            -v|--verbose) VERBOSE=1 ;;
            start|stop|status|env)
                [ -z "$cmd" ] || die "only one command at a time (got '$cmd' and '$1')"
                cmd="$1" ;;
            *) echo "local-slurm: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
        esac
        shift
    done
    [ -n "$cmd" ] || { usage >&2; exit 2; }
    "cmd_$cmd"
}

main "$@"
