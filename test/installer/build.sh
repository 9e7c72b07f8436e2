#!/usr/bin/env bash
# Build the kscloud test installer from the Debian packages on this machine:
#   OUTDIR/vmlinuz     the newest /boot/vmlinuz-* (linux-image-amd64)
#   OUTDIR/initrd.img  gzip'd newc cpio: busybox-static, kernel modules, mke2fs,
#                      sfdisk, blkid, extlinux, syslinux's mbr.bin, the installer's /init,
#                      and the payload it installs (the same kernel, a small
#                      initramfs for the installed system, its /sbin/init).
# Usage: test/installer/build.sh OUTDIR
# Needs no root. Installs nothing: a missing tool is reported with the Debian
# package that provides it (scripts/deps.sh installs them) and the build fails.
# The output is reproducible: building twice gives byte-identical files.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
export SOURCE_DATE_EPOCH=0 LC_ALL=C

die() { echo "build.sh: $*" >&2; exit 1; }

need() { # need FILE PACKAGE
	[ -e "$1" ] || die "missing $1: install the Debian package $2 (scripts/deps.sh installs it)"
}

busybox=/usr/bin/busybox
[ -e "$busybox" ] || busybox=/bin/busybox
need "$busybox" busybox-static
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked: install the Debian package busybox-static"
fi
need /usr/sbin/mke2fs e2fsprogs
need /etc/mke2fs.conf e2fsprogs
need /usr/sbin/sfdisk fdisk
need /usr/sbin/blkid util-linux
need /usr/bin/extlinux extlinux
need /usr/lib/syslinux/mbr/mbr.bin syslinux-common
command -v cpio >/dev/null || die "missing cpio: install the Debian package cpio"
command -v gzip >/dev/null || die "missing gzip: install the Debian package gzip"
command -v modinfo >/dev/null || die "missing modinfo: install the Debian package kmod"

kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || die "no /boot/vmlinuz-*: install the Debian package linux-image-amd64"
[ -r "$kernel" ] || die "$kernel is not readable"
kver=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$kver
need "$moddir/modules.dep" "linux-image-$kver"

# Modules the guests need. af_packet (udhcpc) is built into Debian's kernel and
# is skipped with a note. Disk buses: virtio (virtio_blk, virtio_scsi), SCSI
# (lsilogic = sym53c8xx is libvirt's default x86 SCSI controller; mptspi for
# LSI 53C1030), IDE (ata_piix), SATA (ahci). NICs: virtio_net, e1000, and
# 8139cp (QEMU's rtl8139, libvirt's default model for <interface type='user'/>).
disk_modules="virtio_pci virtio_blk virtio_scsi sd_mod sr_mod sym53c8xx mptspi ata_piix ahci ext4"
net_modules="af_packet virtio_net e1000 8139cp"
# The installed system also gets the ACPI power button (virsh shutdown).
acpi_modules="button evdev"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# modpath NAME|ALIAS: print the .ko paths (relative to $moddir) that NAME
# resolves to; nothing for built-in modules.
modpath() {
	modprobe -S "$kver" -R "$1" 2>/dev/null | while read -r name; do
		f=$(modinfo -k "$kver" -n "$name" 2>/dev/null) || continue
		case $f in
		/*) echo "${f#"$moddir"/}" ;;
		esac
	done
}

# resolve KO: append KO and everything it needs (softdep "pre:" modules and
# modules.dep dependencies, depth first) to $order, dependencies first.
declare -A seen
order=()
resolve() {
	local ko=$1 dep soft
	[ -z "${seen[$ko]:-}" ] || return 0
	seen[$ko]=1
	for soft in $(modinfo -F softdep "$moddir/$ko" | sed -n 's/^pre: *//p' | sed 's/ post:.*//'); do
		for dep in $(modpath "$soft"); do resolve "$dep"; done
	done
	for dep in $(sed -n "s|^$ko: *||p" "$moddir/modules.dep"); do
		resolve "$dep"
	done
	order+=("$ko")
}

# add_modules ROOT NAME...: copy NAME (and dependencies) under ROOT and write
# ROOT/lib/modules/load.list: the .ko files in load order, for /init's insmod.
add_modules() {
	local root=$1 name paths ko
	shift
	seen=()
	order=()
	for name in "$@"; do
		paths=$(modpath "$name")
		if [ -z "$paths" ]; then
			if modinfo -k "$kver" -n "$name" 2>/dev/null | grep -q '^(builtin)'; then
				continue
			fi
			die "kernel module $name not found for $kver"
		fi
		for ko in $paths; do resolve "$ko"; done
	done
	mkdir -p "$root/lib/modules/$kver"
	: >"$root/lib/modules/load.list"
	for ko in "${order[@]}"; do
		mkdir -p "$root/lib/modules/$kver/$(dirname "$ko")"
		cp "$moddir/$ko" "$root/lib/modules/$kver/$ko"
		echo "/lib/modules/$kver/$ko" >>"$root/lib/modules/load.list"
	done
}

# add_busybox ROOT: busybox and a symlink in /bin for each of its applets.
add_busybox() {
	local root=$1 applet
	mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin"
	cp "$busybox" "$root/bin/busybox"
	for applet in $("$busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
	done
}

# add_binary ROOT FILE: FILE and the shared libraries it loads (per ldd).
add_binary() {
	local root=$1 bin=$2 lib
	mkdir -p "$root$(dirname "$bin")"
	cp "$bin" "$root$bin"
	for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}

# newc_node NAME MODE MAJOR MINOR: one newc cpio entry for a device node, so the
# archive carries /dev/console without mknod (and without root).
newc_node() {
	local name=$1 namesize=$((${#1} + 1)) pad
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%s\0' \
		0 "$2" 0 0 1 0 0 0 0 "$3" "$4" "$namesize" 0 "$name"
	pad=$(((4 - (110 + namesize) % 4) % 4))
	head -c "$pad" /dev/zero
}

# pack ROOT FILE: ROOT as a reproducible gzip'd newc cpio owned by root, with
# /dev/console appended as a second archive (the kernel reads both).
pack() {
	local root=$1 file=$2
	find "$root" -exec touch -h -d @0 {} +
	{
		(cd "$root" && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 --reproducible)
		newc_node dev/console $((0020600)) 5 1
		newc_node 'TRAILER!!!' 0 0 0
	} | gzip -n >"$file"
}

# The installed system's initramfs: busybox, disk + ext4 + ACPI button + NIC
# modules (its init takes a DHCP lease with ip=dhcp), and an /init that mounts
# root= and switch_roots to the disk's /sbin/init.
target=$work/target
mkdir -p "$target/dev" "$target/proc" "$target/sys" "$target/sysroot"
add_busybox "$target"
add_modules "$target" $disk_modules $acpi_modules $net_modules
install -m 0755 "$here/guest/target-init" "$target/init"
pack "$target" "$work/target-initrd.img"

# The installer's initramfs.
inst=$work/installer
mkdir -p "$inst/dev" "$inst/proc" "$inst/sys" "$inst/tmp" "$inst/mnt/sysimage" \
	"$inst/etc/udhcpc" "$inst/usr/share/kscloud" "$inst/usr/lib/syslinux/mbr"
add_busybox "$inst"
add_modules "$inst" $disk_modules $net_modules isofs
for bin in /usr/sbin/mke2fs /usr/sbin/sfdisk /usr/sbin/blkid /usr/bin/extlinux; do
	add_binary "$inst" "$bin"
done
cp /etc/mke2fs.conf "$inst/etc/mke2fs.conf"
cp /usr/lib/syslinux/mbr/mbr.bin "$inst/usr/lib/syslinux/mbr/mbr.bin"
install -m 0755 "$here/guest/installer-init" "$inst/init"
install -m 0755 "$here/guest/udhcpc.script" "$inst/etc/udhcpc/default.script"
install -m 0644 "$here/guest/kstokens.awk" "$inst/usr/share/kscloud/kstokens.awk"
install -m 0755 "$here/guest/system-init" "$inst/usr/share/kscloud/system-init"
cp "$kernel" "$inst/usr/share/kscloud/vmlinuz"
cp "$work/target-initrd.img" "$inst/usr/share/kscloud/initrd.img"
echo "$kver" >"$inst/usr/share/kscloud/kernel-version"
pack "$inst" "$work/initrd.img"

# Replace the outputs only when they changed.
mkdir -p "$out"
cp "$kernel" "$work/vmlinuz"
for f in vmlinuz initrd.img; do
	if ! cmp -s "$work/$f" "$out/$f"; then
		cp "$work/$f" "$out/$f.tmp"
		mv -f "$out/$f.tmp" "$out/$f"
	fi
done
echo "build.sh: $out/vmlinuz ($kver, $(stat -c %s "$out/vmlinuz") bytes)," \
	"$out/initrd.img ($(stat -c %s "$out/initrd.img") bytes)"
