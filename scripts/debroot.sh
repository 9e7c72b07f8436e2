#!/usr/bin/env bash
# debroot.sh [--suite bookworm|bullseye] DIR: a fresh minimal Debian root in
# DIR (emptied first), for the package, systemd and portability tests
# (scripts/test-packages.sh, scripts/test-systemd.sh, scripts/test-compat.sh).
#   bookworm (default): as a node has it (debootstrap --variant=minbase with
#            systemd, libvirt0, passwd); cached as
#            /var/cache/kscloud-test/debroot-bookworm.tar (KSCLOUD_DEBROOT_CACHE)
#   bullseye: glibc 2.31 and libvirt 7.0, minbase with libvirt0, no docs or
#            locales; cached as /var/cache/kscloud-test/debroot-bullseye.tar.zst
#            (KSCLOUD_OLDROOT_CACHE)
# The caches are outside the clone, so that later clones on the same machine
# reuse them (delete one to refresh); every call unpacks a fresh copy.
# debroot.sh --mirror prints the Debian mirror this machine's apt uses (also
# scripts/sysroot.sh's). Root only (but for --mirror).
set -euo pipefail

mirror() {
	local m=
	if [ -r /etc/apt/sources.list.d/debian.sources ]; then
		m=$(awk '$1 == "URIs:" {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
	fi
	if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
		m=$(awk '$1 == "deb" && $3 ~ /^bookworm/ {print $2; exit}' /etc/apt/sources.list)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

usage() { echo "usage: debroot.sh [--suite bookworm|bullseye] DIR | debroot.sh --mirror" >&2; exit 2; }
suite=bookworm
case "${1:-}" in
--mirror) [ $# -eq 1 ] || usage; mirror; exit 0 ;;
--suite) [ $# -ge 2 ] || usage; suite=$2; shift 2 ;;
esac
[ $# -eq 1 ] && [ -n "$1" ] || usage
dest=$1
case "$suite" in
bookworm)
	cache=${KSCLOUD_DEBROOT_CACHE:-/var/cache/kscloud-test/debroot-bookworm.tar}
	include=systemd,libvirt0,passwd tarz=()
	;;
bullseye)
	cache=${KSCLOUD_OLDROOT_CACHE:-/var/cache/kscloud-test/debroot-bullseye.tar.zst}
	include=libvirt0 tarz=(--zstd)
	;;
*) echo "debroot: suite $suite: not one of bookworm, bullseye" >&2; exit 2 ;;
esac
mkdir -p "$(dirname "$cache")"

if [ ! -s "$cache" ]; then
	seed=$dest.seed
	echo "debroot: debootstrap $suite (minbase + $include) into $seed; cached in $cache" >&2
	rm -rf "$seed"
	mkdir -p "$seed"
	debootstrap --variant=minbase --include="$include" "$suite" "$seed" "$(mirror)" >"$seed.log" 2>&1 ||
		{ tail -20 "$seed.log" >&2; echo "debroot: debootstrap failed (whole log: $seed.log)" >&2; exit 1; }
	chroot "$seed" apt-get clean
	if [ "$suite" = bullseye ]; then
		# Only running binaries and dpkg -i there: no package lists, docs, locales.
		rm -rf "$seed"/var/lib/apt/lists/* "$seed"/usr/share/{doc,man,info,locale}/*
	fi
	tar -C "$seed" --numeric-owner "${tarz[@]}" -cf "$cache.tmp.$$" . && mv "$cache.tmp.$$" "$cache"
	rm -rf "$seed" "$seed.log"
fi
# Never empty a root something is still mounted in (rm -rf crosses mounts).
if [ -d "$dest" ] && awk -v d="$(realpath "$dest")/" 'index($2, d) == 1 {f = 1} END {exit !f}' /proc/self/mounts; then
	echo "debroot: $dest: something is still mounted below it; not removing it" >&2
	exit 1
fi
rm -rf "$dest" && mkdir -p "$dest"
tar -C "$dest" --numeric-owner "${tarz[@]}" -xf "$cache"
