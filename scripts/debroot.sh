#!/usr/bin/env bash
# debroot.sh DIR: a fresh minimal Debian bookworm root in DIR (emptied first)
# as a node has it (debootstrap --variant=minbase with systemd, libvirt0,
# passwd), for the package and systemd tests (scripts/test-packages.sh,
# scripts/test-systemd.sh). The bootstrapped root is cached as
# /var/cache/kscloud-test/debroot-bookworm.tar (KSCLOUD_DEBROOT_CACHE;
# outside the clone, so that later clones on the same machine reuse it;
# delete it to refresh); every call unpacks a fresh copy. Root only.
set -euo pipefail
[ $# -eq 1 ] && [ -n "$1" ] || { echo "usage: debroot.sh DIR" >&2; exit 2; }
dest=$1
cache=${KSCLOUD_DEBROOT_CACHE:-/var/cache/kscloud-test/debroot-bookworm.tar}
mkdir -p "$(dirname "$cache")"

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

if [ ! -s "$cache" ]; then
	seed=$dest.seed
	echo "debroot: debootstrap bookworm (minbase + systemd, libvirt0) into $seed; cached in $cache" >&2
	rm -rf "$seed"
	mkdir -p "$seed"
	debootstrap --variant=minbase --include=systemd,libvirt0,passwd bookworm "$seed" "$(mirror)" >"$seed.log" 2>&1 ||
		{ tail -20 "$seed.log" >&2; echo "debroot: debootstrap failed (whole log: $seed.log)" >&2; exit 1; }
	chroot "$seed" apt-get clean
	tar -C "$seed" --numeric-owner -cf "$cache.tmp.$$" . && mv "$cache.tmp.$$" "$cache"
	rm -rf "$seed" "$seed.log"
fi
# Never empty a root something is still mounted in (rm -rf crosses mounts).
if [ -d "$dest" ] && awk -v d="$(realpath "$dest")/" 'index($2, d) == 1 {f = 1} END {exit !f}' /proc/self/mounts; then
	echo "debroot: $dest: something is still mounted below it; not removing it" >&2
	exit 1
fi
rm -rf "$dest" && mkdir -p "$dest"
tar -C "$dest" --numeric-owner -xf "$cache"
