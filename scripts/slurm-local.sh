#!/usr/bin/env bash
# slurm-local.sh: a one-node Slurm cluster on this Debian machine, for tests
# and for trying `bnaudit compare --engine slurm` without a real cluster.
#
#   scripts/slurm-local.sh start   install slurm-wlm and munge if missing (apt,
#                                  root), write a one-node configuration,
#                                  start munged, slurmctld and slurmd, and
#                                  wait until the node is idle (about 20 s)
#   scripts/slurm-local.sh stop    stop the daemons this script started
#   scripts/slurm-local.sh status  print sinfo's view
#
# Starting twice is harmless: a running cluster is left as it is. The
# configuration: one node of this machine's cores and memory (less 1 GiB),
# one default partition "debug", DefMemPerCPU=1024 (without it each task
# claims the whole node and tasks run one at a time), accounting off (so
# follow jobs with squeue and bnaudit's work folder, not sacct).
set -euo pipefail

state=/var/spool/bnaudit-slurm
conf=/etc/slurm/slurm.conf
host=$(hostname -s)

need_root() {
	if [[ $(id -u) != 0 ]]; then
		echo "slurm-local.sh: must run as root (it installs packages and starts daemons)" >&2
		exit 2
	fi
}

install() {
	if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
		return
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q slurm-wlm munge >/dev/null; }
}

running() {
	sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'
}

start() {
	need_root
	install
	if running; then
		echo "slurm-local: already running"
		return
	fi
	mkdir -p "$state"/{ctld,d} /etc/slurm /run/munge /var/log/munge /var/lib/munge
	if [[ ! -s /etc/munge/munge.key ]]; then
		mkdir -p /etc/munge
		head -c 1024 /dev/urandom >/etc/munge/munge.key
	fi
	chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
	chmod 400 /etc/munge/munge.key
	if ! pgrep -x munged >/dev/null; then
		runuser -u munge -- /usr/sbin/munged
		touch "$state/munged.started"
	fi
	local cpus mem
	cpus=$(nproc)
	mem=$(($(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024))
	cat >"$conf" <<CONF
# written by bnaudit's scripts/slurm-local.sh: a one-node test cluster
ClusterName=bnaudit-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
MinJobAge=600
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
	pgrep -x slurmctld >/dev/null || slurmctld
	pgrep -x slurmd >/dev/null || slurmd
	for _ in $(seq 1 60); do
		if running; then
			echo "slurm-local: node $host idle ($cpus CPUs, $mem MiB)"
			return
		fi
		sleep 1
	done
	echo "slurm-local: the node did not come up within 60 s; see $state/slurmctld.log and $state/slurmd.log" >&2
	exit 3
}

stop() {
	need_root
	if pgrep -x slurmctld >/dev/null; then
		scontrol shutdown >/dev/null 2>&1 || true
	fi
	for _ in $(seq 1 20); do
		pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null || break
		sleep 0.5
	done
	pkill -x slurmd 2>/dev/null || true
	pkill -x slurmctld 2>/dev/null || true
	if [[ -e "$state/munged.started" && -s /run/munge/munged.pid ]]; then
		kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
	fi
	rm -f "$state/munged.started"
	echo "slurm-local: stopped"
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) sinfo ;;
*)
	echo "usage: scripts/slurm-local.sh start|stop|status" >&2
	exit 2
	;;
esac
