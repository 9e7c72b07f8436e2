#!/usr/bin/env bash
# make bench: every benchmark, with libvirtd started (root) for the ones
# that boot guests. Numbers to stdout; see README "Benchmarks".
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -tags=$(scripts/gotags.sh)"
scripts/deps.sh
if [ "$(id -u)" -eq 0 ]; then
	# Stop it at the end only if this run started it (another run may use it).
	if [ "$(scripts/libvirtd.sh start)" = started ]; then
		trap 'scripts/libvirtd.sh stop' EXIT
	fi
	export KSCLOUD_TEST_LIBVIRT=qemu:///system
fi
go test -p 1 -run '^$' -bench "${BENCH:-.}" -benchmem ${BENCHFLAGS:-} ./...
