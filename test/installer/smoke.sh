#!/usr/bin/env bash
# By-hand smoke test of the kscloud test installer under libvirt (needs root and
# a running libvirtd: scripts/libvirtd.sh start). For each case it installs on
# a fresh sparse disk with the installer as a transient domain (on_reboot =
# destroy), waits for the domain to end, boots the disk alone (BIOS -> extlinux)
# and checks the serial log for "kscloud-installed sha256=<sha256 of the kickstart>".
#   http  examples/minimal.ks served on 127.0.0.1 (python3 -m http.server),
#         inst.ks=http://10.0.2.2:PORT/minimal.ks (the user network's host)
#   file  a gzip'd newc cpio holding ks.cfg appended to a copy of initrd.img,
#         inst.ks=file:/ks.cfg
#   404   inst.ks= names a missing file: "kickstart file not found: URL", then
#         the installer powers off
#   full  examples/full.ks over http (%pre + %include, /boot + swap + /,
#         %post in and out of the chroot, reboot), with ip=dhcp and two
#         serial ports (console=ttyS0 console=ttyS1): both get the output
# Usage: test/installer/smoke.sh [CASE...]   (default: http file 404 full)
# Environment: BUS=virtio|scsi|sata|ide (disk bus, default virtio),
#   SERIAL_PORT=0|1 (serial <target port>; 1 is ttyS1, as on Eucalyptus),
#   NIC=<libvirt model> (default: libvirt's, rtl8139), KEEP=1 keeps the files
#   (a failed run always keeps them),
#   LIBVIRT_URI (default qemu:///system).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
uri=${LIBVIRT_URI:-qemu:///system}
bus=${BUS:-virtio}
port=${SERIAL_PORT:-0}
out=$repo/build/test-installer
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(http file 404 full)

case $bus in
virtio) target=vda ;;
scsi | sata) target=sda ;;
ide) target=hda ;;
*) echo "smoke.sh: BUS must be virtio, scsi, sata or ide" >&2; exit 2 ;;
esac

virsh() { command virsh -q -c "$uri" "$@"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

"$here/build.sh" "$out"

work=$(mktemp -d /var/tmp/kscloud-smoke.XXXXXX)
prefix=kscloud-smoke-$$
http_pid=
cleanup() {
	local rc=$? d
	for d in $(virsh list --name 2>/dev/null | grep "^$prefix-" || true); do
		virsh destroy "$d" >/dev/null 2>&1 || true
	done
	[ -z "$http_pid" ] || kill "$http_pid" 2>/dev/null || true
	if [ -n "${KEEP:-}" ] || [ $rc -ne 0 ]; then
		echo "smoke: files kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The kickstarts are served from $work/www on an ephemeral port of 127.0.0.1;
# the guest reaches it through the user network's host address 10.0.2.2.
mkdir -p "$work/www"
cp "$here/examples/minimal.ks" "$here/examples/full.ks" "$work/www/"
python3 -u -m http.server --bind 127.0.0.1 --directory "$work/www" 0 >"$work/http.log" 2>&1 &
http_pid=$!
for _ in $(seq 50); do
	http_port=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$work/http.log" | head -n 1)
	[ -z "$http_port" ] || break
	sleep 0.1
done
[ -n "$http_port" ] || { echo "smoke: http server did not start" >&2; exit 1; }

# domain_xml NAME DISK LOG [INITRD CMDLINE]: a TCG domain with ACPI, a user
# network, the disk and a serial port logged to LOG (and, when $two_serials is
# set, port 1 to LOG-ttyS1.log). With INITRD it boots the installer kernel
# directly, without it the BIOS boots the disk.
domain_xml() {
	local boot="    <boot dev='hd'/>"
	if [ $# -gt 3 ]; then
		boot="    <kernel>$out/vmlinuz</kernel>
    <initrd>$4</initrd>
    <cmdline>$5</cmdline>"
	fi
	cat <<EOF
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
$boot
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$2'/>
      <target dev='$target' bus='$bus'/>
    </disk>
    <interface type='user'>${NIC:+<model type='$NIC'/>}</interface>
    <serial type='file'>
      <source path='$3'/>
      <target port='$port'/>
    </serial>${two_serials:+
    <serial type='file'>
      <source path='${3%.log}-ttyS1.log'/>
      <target port='1'/>
    </serial>}
  </devices>
</domain>
EOF
}

# gone NAME: the domain no longer exists (and libvirtd answered: it may be
# restarting, as other tests on this machine restart it).
gone() {
	local names
	virsh domstate "$1" >/dev/null 2>&1 && return 1
	names=$(virsh list --all --name 2>/dev/null) || return 1
	! grep -qx -- "$1" <<<"$names"
}

# run NAME XMLFILE LOG TIMEOUT: start a transient domain and wait until it is
# gone; prints the wall time. Fails (showing the log's tail) on timeout.
run() {
	local start
	start=$(now)
	virsh create "$2" >/dev/null
	until gone "$1"; do
		if awk -v a="$start" -v b="$(now)" -v t="$4" 'BEGIN { exit !(b - a > t) }'; then
			echo "smoke: $1 still running after $4 s; last lines of $3:" >&2
			tail -n 20 "$3" >&2
			return 1
		fi
		sleep 0.5
	done
	since "$start"
}

# expect LOG TEXT: LOG has a line containing TEXT.
expect() {
	if ! grep -aqF -- "$2" "$1"; then
		echo "smoke: FAIL: \"$2\" not in $1; last lines:" >&2
		tail -n 25 "$1" >&2
		exit 1
	fi
}

# install_and_boot CASE INITRD KSFILE CMDLINE: the whole round trip.
install_and_boot() {
	local c=$1 disk=$work/$1.qcow2 t sum
	sum=$(sha256sum "$3" | cut -d' ' -f1)
	qemu-img create -q -f qcow2 "$disk" 1G
	domain_xml "$prefix-$c-install" "$disk" "$work/$c-install.log" "$2" "$4" >"$work/$c-install.xml"
	t=$(run "$prefix-$c-install" "$work/$c-install.xml" "$work/$c-install.log" 300)
	expect "$work/$c-install.log" "Installation complete"
	expect "$work/$c-install.log" "sha256=$sum"
	echo "smoke: $c: installer ran $t s"
	domain_xml "$prefix-$c-system" "$disk" "$work/$c-system.log" >"$work/$c-system.xml"
	t=$(run "$prefix-$c-system" "$work/$c-system.xml" "$work/$c-system.log" 180)
	expect "$work/$c-system.log" "kscloud-installed sha256=$sum"
	expect "$work/$c-system.log" "kscloud login:"
	echo "smoke: $c: installed system booted, printed its marker and powered off in $t s"
}

two_serials=

echo "smoke: initrd.img $(stat -c %s "$out/initrd.img") bytes; disk bus $bus; serial port $port"
for c in "${cases[@]}"; do
	case $c in
	http)
		install_and_boot http "$out/initrd.img" "$work/www/minimal.ks" \
			"console=ttyS$port no_timer_check inst.ks=http://10.0.2.2:$http_port/minimal.ks"
		;;
	file)
		mkdir -p "$work/inject"
		cp "$here/examples/minimal.ks" "$work/inject/ks.cfg"
		(cd "$work/inject" && echo ks.cfg | cpio --quiet -o -H newc -R 0:0 | gzip -n) >"$work/ks.cpio.gz"
		cat "$out/initrd.img" "$work/ks.cpio.gz" >"$work/initrd-ks.img"
		install_and_boot file "$work/initrd-ks.img" "$work/inject/ks.cfg" \
			"console=ttyS$port no_timer_check inst.ks=file:/ks.cfg"
		;;
	404)
		url=http://10.0.2.2:$http_port/missing.ks
		qemu-img create -q -f qcow2 "$work/404.qcow2" 1G
		domain_xml "$prefix-404" "$work/404.qcow2" "$work/404.log" "$out/initrd.img" \
			"console=ttyS$port no_timer_check inst.ks=$url" >"$work/404.xml"
		t=$(run "$prefix-404" "$work/404.xml" "$work/404.log" 300)
		expect "$work/404.log" "kickstart file not found: $url"
		expect "$work/404.log" "Traceback (most recent call last):"
		echo "smoke: 404: installer reported the missing kickstart and powered off in $t s"
		;;
	full)
		[ "$port" = 0 ] || { echo "smoke: the full case uses ports 0 and 1 itself" >&2; exit 2; }
		two_serials=1
		install_and_boot full "$out/initrd.img" "$work/www/full.ks" \
			"console=ttyS1 console=ttyS0 no_timer_check ip=dhcp inst.ks=http://10.0.2.2:$http_port/full.ks"
		for line in 'unknown command "frobnicate", skipped' "full.ks: %pre wrote /tmp/part-include" \
			"Creating ext4 on /dev/${target}1" "Creating swap on /dev/${target}2" \
			"Creating ext4 on /dev/${target}3" "full.ks: root password set" \
			"full.ks: bootloader --append kept" "full.ks: /boot in fstab" \
			"full.ks: marker present in the chroot" "script exited with status 3" "Rebooting"; do
			expect "$work/full-install.log" "$line"
		done
		# the kernel prints to the first console=ttyS only (ttyS1 here), the
		# installer and the installed system to both
		expect "$work/full-system-ttyS1.log" "Command line: BOOT_IMAGE=/vmlinuz root=UUID="
		expect "$work/full-system-ttyS1.log" "console=ttyS1 console=ttyS0 no_timer_check kscloud.test=full"
		expect "$work/full-install-ttyS1.log" "Installation complete"
		expect "$work/full-system-ttyS1.log" "kscloud-installed sha256=$(sha256sum "$work/www/full.ks" | cut -d' ' -f1)"
		two_serials=
		;;
	*) echo "smoke: unknown case $c (http, file, 404, full)" >&2; exit 2 ;;
	esac
done
echo "smoke: PASS"
