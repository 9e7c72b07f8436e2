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
	# Stop it at the end only if this run started it (another run may use it).
	if [ "$(scripts/libvirtd.sh start)" = started ]; then
		trap 'scripts/libvirtd.sh stop' EXIT
	fi
	export KSCLOUD_TEST_LIBVIRT=qemu:///system
else
	echo "test: not root: tests that need libvirtd will skip and say so" >&2
fi
go vet ./...
# Two lanes side by side, one package at a time in each. The guest lane
# holds the packages whose tests boot QEMU guests (they call
# testenv.Libvirt): under software emulation on 2 cores their
# timing-sensitive checks (watchdog, stop → final gap) must not compete
# with each other. Every other package runs in the second lane, and after
# them the install test of the .deb and .rpm in a debootstrapped Debian
# root, the packaged nchookd.service under a real systemd booted in that
# root, and the portability test (glibc floor, static hooks, the binaries
# in a Debian 11 root; root; they skip and say so otherwise).
guest=() other=()
while read -r pkg dir; do
	if grep -qs 'testenv\.Libvirt(' "$dir"/*_test.go; then
		guest+=("$pkg")
	else
		other+=("$pkg")
	fi
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
mkdir -p build
start=$(date +%s)
(
	go test -p 1 -count=1 -timeout 60m ${GOTESTFLAGS:-} "${other[@]}" || exit
	if [ -z "${GOTESTFLAGS:-}" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			make --no-print-directory packages
		fi
		rc=0
		scripts/test-packages.sh || rc=$?
		scripts/test-systemd.sh || rc=$?
		scripts/test-compat.sh || rc=$?
		exit "$rc"
	fi
) >build/test-other.log 2>&1 &
other_pid=$!
rc=0
go test -p 1 -count=1 -timeout 60m ${GOTESTFLAGS:-} "${guest[@]}" || rc=$?
wait "$other_pid" || rc=$?
echo "test: the other lane (${#other[@]} packages, then the package install test):" >&2
cat build/test-other.log
echo "test: both lanes took $(($(date +%s) - start)) s" >&2
[ "$rc" -eq 0 ] || exit "$rc"
if [ -z "${GOTESTFLAGS:-}" ]; then
	# Brief fuzzing of every fuzz target (new crashers fail the run).
	for pkg in $(go list ./internal/...); do
		for fz in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
			echo "fuzz: $pkg $fz" >&2
			if ! go test -run '^$' -fuzz "^${fz}\$" -fuzztime "${FUZZTIME:-10s}" "$pkg"; then
				# A crasher is saved under testdata/fuzz, where a plain run
				# replays it; a fuzzing worker that hung or died on a loaded
				# machine saves none and is no finding against the code.
				dir=$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$fz
				new=$(git status --porcelain --untracked-files=all -- "$dir")
				if [ -n "$new" ] || ! go test -count=1 -run "^${fz}\$" "$pkg"; then
					echo "fuzz: $pkg $fz: a crasher (saved in $dir)" >&2
					exit 1
				fi
				echo "fuzz: $pkg $fz: the fuzzing worker failed with no crasher saved; the corpus replays clean" >&2
			fi
		done
	done
fi
