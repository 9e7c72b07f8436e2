#!/usr/bin/env bash
# Start or stop a root libvirtd without systemd (DESIGN.md §6).
#   scripts/libvirtd.sh start   # idempotent: does nothing when libvirtd answers;
#                               # prints "started" when it started libvirtd, else "running"
#   scripts/libvirtd.sh stop    # stops only a libvirtd (and virtlogd) this script started
# A caller stops libvirtd only when its own start printed "started": a
# second run on the same host must not stop the libvirtd the first one uses.
set -euo pipefail
state=/run/kscloud-libvirtd
mkdir -p "$state"

answers() { timeout 5 virsh -c qemu:///system version >/dev/null 2>&1; }

# virtlogd_up: a virtlogd runs, or systemd starts one on its socket when
# libvirtd connects (virtlogd.socket).
virtlogd_up() {
	pgrep -x virtlogd >/dev/null && return 0
	[ -d /run/systemd/system ] && systemctl --quiet is-active virtlogd.socket 2>/dev/null
}

# start_virtlogd: start one and record it for stop; says so when it cannot.
start_virtlogd() {
	if virtlogd -d; then
		pgrep -xo virtlogd >"$state/virtlogd"
	else
		echo "libvirtd: virtlogd did not start: domains with a log cannot start" >&2
		return 1
	fi
}

start() {
	if answers; then
		# libvirtd needs virtlogd to start a domain ("Failed to connect
		# socket to '/run/libvirt/virtlogd-sock'"): a libvirtd left running
		# without it (virtlogd killed, libvirtd restarted by hand) gets one.
		if virtlogd_up; then
			echo "libvirtd: already running" >&2
		else
			start_virtlogd && echo "libvirtd: already running; started virtlogd" >&2
		fi
		echo running
		return 0
	fi
	getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
	getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
	mkdir -p /etc/libvirt /var/lib/libvirt/images /var/log/libvirt/qemu /run/libvirt
	conf=/etc/libvirt/qemu.conf
	if ! grep -qs '^user *= *"root"' "$conf"; then
		{
			echo '# written by kscloud scripts/libvirtd.sh: QEMU runs as root, no systemd here'
			echo 'user = "root"'
			echo 'group = "root"'
		} >>"$conf"
	fi
	virtlogd_up || start_virtlogd || true
	pgrep -x libvirtd >/dev/null || { libvirtd -d; pgrep -xo libvirtd >"$state/libvirtd"; }
	for _ in $(seq 1 100); do
		answers && { echo "libvirtd: started" >&2; echo started; return 0; }
		sleep 0.1
	done
	echo "libvirtd: did not answer on qemu:///system within 10 s" >&2
	return 1
}

# stop_one NAME: stop the NAME this script started (its pid in the
# marker), not another one that has its pid since.
stop_one() {
	local pid
	[ -e "$state/$1" ] || return 0
	pid=$(cat "$state/$1" 2>/dev/null || true)
	if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]; then
		kill "$pid" 2>/dev/null || true
	fi
	rm -f "$state/$1"
}

stop() {
	stop_one libvirtd
	stop_one virtlogd
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
