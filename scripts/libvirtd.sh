#!/usr/bin/env bash
# Start or stop a root libvirtd without systemd (DESIGN.md §6).
#   scripts/libvirtd.sh start   # idempotent: does nothing when libvirtd answers
#   scripts/libvirtd.sh stop    # stops only a libvirtd this script started
set -euo pipefail
state=/run/kscloud-libvirtd
mkdir -p "$state"

answers() { timeout 5 virsh -c qemu:///system version >/dev/null 2>&1; }

start() {
	if answers; then
		echo "libvirtd: already running" >&2
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
	pgrep -x virtlogd >/dev/null || { virtlogd -d; touch "$state/virtlogd"; }
	pgrep -x libvirtd >/dev/null || { libvirtd -d; touch "$state/libvirtd"; }
	for _ in $(seq 1 100); do
		answers && { echo "libvirtd: started" >&2; return 0; }
		sleep 0.1
	done
	echo "libvirtd: did not answer on qemu:///system within 10 s" >&2
	return 1
}

stop() {
	if [ -e "$state/libvirtd" ]; then
		pkill -x libvirtd || true
		rm -f "$state/libvirtd"
	fi
	if [ -e "$state/virtlogd" ]; then
		pkill -x virtlogd || true
		rm -f "$state/virtlogd"
	fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
