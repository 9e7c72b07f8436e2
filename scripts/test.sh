#!/usr/bin/env bash
# Everything CI runs: install what is missing, start libvirtd (root only),
# run every Go test including the real-libvirt ones, stop what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/deps.sh
if [ "$(id -u)" -eq 0 ]; then
	scripts/libvirtd.sh start
	trap 'scripts/libvirtd.sh stop' EXIT
	export KSCLOUD_TEST_LIBVIRT=qemu:///system
else
	echo "test: not root: tests that need libvirtd will skip and say so" >&2
fi
go vet ./...
go test -count=1 -timeout 60m ${GOTESTFLAGS:-} ./...
