#!/usr/bin/env bash
# Install the Debian packages kscloud's build, tests and demo need, if missing.
# Safe to run again; needs root (or sudo) only when something is missing.
set -euo pipefail
pkgs=(
	gcc libc6-dev pkg-config make git ca-certificates xsltproc
	libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev
	qemu-system-x86 qemu-utils libxml2-utils
	dnsmasq-base iptables # libvirt NAT networks (--network default): DHCP, DNS, masquerading
	linux-image-amd64 busybox-static extlinux syslinux-common
	cpio gzip e2fsprogs fdisk
	ovmf xorriso zstd xz-utils
	awscli
	python3
	debootstrap rpm
	curl gpgv debian-archive-keyring # scripts/sysroot.sh: the old-glibc sysroot of make packages
	systemd-container iproute2 # scripts/test-systemd.sh: systemd-nspawn boots the Debian root; ip in its network namespace
	zsh fish # the completion tests run the scripts in real shells
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	echo "deps: installing ${missing[*]}" >&2
	$sudo apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "deps: Go is at /usr/local/go/bin: add it to PATH" >&2
	else
		echo "deps: Go 1.22 or newer is needed (https://go.dev/dl), then run this again" >&2
	fi
	exit 1
fi
go mod download
