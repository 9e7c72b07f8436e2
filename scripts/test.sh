#!/usr/bin/env bash
# Everything CI runs: install what is missing, start libvirtd (root only),
# run every Go test including the real-libvirt ones, stop what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
# The build tags of every build (Makefile's GOTAGS): libvirt dlopen'd, no LXC/QEMU libraries.
export GOFLAGS="${GOFLAGS:-} -tags=$(scripts/gotags.sh)"
scripts/deps.sh
if [ "$(id -u)" -eq 0 ]; then
	scripts/libvirtd.sh start
	trap 'scripts/libvirtd.sh stop' EXIT
	export KSCLOUD_TEST_LIBVIRT=qemu:///system
else
	echo "test: not root: tests that need libvirtd will skip and say so" >&2
fi
go vet ./...
# Install test of the .deb and .rpm in a debootstrapped Debian root (root;
# skips and says so otherwise).
if [ -z "${GOTESTFLAGS:-}" ]; then
	if [ "$(id -u)" -eq 0 ]; then
		make --no-print-directory packages
	fi
	scripts/test-packages.sh
fi
# One package at a time: the end-to-end tests run QEMU guests under
# software emulation on 2 cores, and timing-sensitive checks (watchdog,
# stop → final gap) must not compete with other packages' tests.
go test -p 1 -count=1 -timeout 60m ${GOTESTFLAGS:-} ./...
if [ -z "${GOTESTFLAGS:-}" ]; then
	# Brief fuzzing of every fuzz target (new crashers fail the run).
	for pkg in $(go list ./internal/...); do
		for fz in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
			echo "fuzz: $pkg $fz" >&2
			go test -run '^$' -fuzz "^${fz}\$" -fuzztime "${FUZZTIME:-10s}" "$pkg"
		done
	done
fi
