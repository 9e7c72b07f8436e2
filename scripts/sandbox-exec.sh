#!/usr/bin/env bash
# sandbox-exec.sh RW_PATH... -- COMMAND [ARGS]
# Runs COMMAND under the file-system and privilege restrictions of
# packaging/nchookd.service, without systemd (which is not PID 1 here), so
# the e2e tests can show the hardened daemon still works
# (KSCLOUD_E2E_SANDBOX=1). Root only. Applied the way systemd applies them:
#   ProtectSystem=strict   every mount read-only in a private mount namespace
#                          except /dev, /proc, /sys; RW_PATHs (ReadWritePaths=,
#                          StateDirectory=, RuntimeDirectory=) bound writable
#   ProtectHome=yes        /home, /root, /run/user empty and read-only
#   NoNewPrivileges=yes, CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER
#                          CAP_DAC_OVERRIDE   (setpriv)
# Not applied here (they need systemd's seccomp/BPF/namespace setup):
# SystemCallFilter, RestrictAddressFamilies, IPAddressDeny, PrivateTmp,
# PrivateDevices, Protect{Kernel*,Clock,Hostname,ControlGroups}, ProtectProc.
# scripts/test-systemd.sh runs the packaged unit itself, all of it applied,
# under systemd booted in a container (no QEMU guests there).
set -euo pipefail
rw=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	rw+=("$1")
	shift
done
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { echo "usage: sandbox-exec.sh RW_PATH... -- COMMAND [ARGS]" >&2; exit 2; }
exec unshare --mount --propagation private -- bash -euo pipefail -c '
	n=$1; shift
	rw=("${@:1:$n}"); shift "$n"
	while read -r _ m _; do
		case $m in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
		mount -o remount,bind,ro "$m" 2>/dev/null || true
	done </proc/self/mounts
	for d in /home /root /run/user; do
		[ -d "$d" ] && mount -t tmpfs -o ro,mode=0755 tmpfs "$d"
	done
	for p in "${rw[@]}"; do
		mkdir -p "$p" 2>/dev/null || true
		mount --bind "$p" "$p"
		mount -o remount,bind,rw "$p"
	done
	exec setpriv --no-new-privs --bounding-set -all,+chown,+fowner,+dac_override -- "$@"
' sandbox "${#rw[@]}" "${rw[@]}" "$@"
