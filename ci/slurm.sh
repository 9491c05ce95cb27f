#!/usr/bin/env bash
# ci/slurm.sh start|stop|status: a real single-node Slurm (munge, slurmctld,
# slurmd) on this machine, for the Slurm executor's integration tests.
#
# start installs slurm-wlm and munge when missing (Debian/Ubuntu, as root),
# writes a munge key and /etc/slurm/slurm.conf for this host (one node, all
# its cores, partition "debug"), starts the daemons and waits until the node
# is idle. stop kills the daemons it started. Both are idempotent. Works
# without systemd; see docs/slurm.md.
set -euo pipefail

conf=/etc/slurm/slurm.conf
host=$(hostname -s)

die() { echo "ci/slurm.sh: $*" >&2; exit 1; }

pid_of() { # pidfile → pid of a live process, or nothing
	[ -f "$1" ] || return 0
	local p
	p=$(cat "$1" 2>/dev/null || true)
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then echo "$p"; fi
}

install_pkgs() {
	command -v sbatch >/dev/null && command -v munged >/dev/null && command -v slurmd >/dev/null && return
	[ "$(id -u)" = 0 ] || die "slurm is not installed and installing it needs root"
	command -v apt-get >/dev/null || die "slurm is not installed and there is no apt-get"
	echo "ci/slurm.sh: installing slurm-wlm and munge"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

configure() {
	install -d -o munge -g munge -m 755 /run/munge
	install -d -o munge -g munge -m 700 /etc/munge
	if [ ! -s /etc/munge/munge.key ]; then
		dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
	fi
	chown munge:munge /etc/munge/munge.key
	chmod 400 /etc/munge/munge.key
	mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm

	local cpus mem
	cpus=$(nproc)
	mem=$(free -m | awk '/^Mem:/ { print int($2 * 0.9) }')
	local want
	want=$(cat <<EOF
# Written by peftbench ci/slurm.sh: one node, for tests.
ClusterName=local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=/var/spool/slurmctld/slurmctld.pid
SlurmdPidFile=/var/spool/slurmd/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
)
	if [ ! -f "$conf" ] || [ "$(cat "$conf")" != "$want" ]; then
		printf '%s\n' "$want" >"$conf"
	fi
}

start() {
	install_pkgs
	configure
	if [ -z "$(pid_of /run/munge/munged.pid)" ]; then
		su -s /bin/sh munge -c munged
	fi
	munge -n | unmunge >/dev/null || die "munge does not work"
	[ -n "$(pid_of /var/spool/slurmctld/slurmctld.pid)" ] || slurmctld
	[ -n "$(pid_of /var/spool/slurmd/slurmd.pid)" ] || slurmd
	local state=""
	for _ in $(seq 1 60); do
		state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
		case "$state" in
		idle | mixed | allocated) echo "ci/slurm.sh: node $host is $state"; return 0 ;;
		down* | drain*) scontrol update nodename="$host" state=resume 2>/dev/null || true ;;
		esac
		sleep 0.5
	done
	die "node $host did not become idle (state ${state:-none}); see /var/log/slurm/"
}

stop() {
	local f p
	for f in /var/spool/slurmd/slurmd.pid /var/spool/slurmctld/slurmctld.pid /run/munge/munged.pid; do
		p=$(pid_of "$f")
		if [ -n "$p" ]; then
			kill "$p"
			for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		fi
	done
	echo "ci/slurm.sh: stopped"
}

status() {
	command -v sinfo >/dev/null || { echo "slurm not installed"; return 1; }
	local state
	state=$(sinfo -h -o %T 2>/dev/null | head -n1 || true)
	echo "node $host: ${state:-controller not reachable}"
	case "$state" in idle | mixed | allocated) return 0 ;; *) return 1 ;; esac
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) die "usage: ci/slurm.sh start|stop|status" ;;
esac
