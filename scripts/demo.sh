#!/usr/bin/env bash
# README's first command (make demo): on a fresh Debian machine, as root,
# install what is missing, build, start libvirtd, and show the launch path:
#  1. nchookd rewrite on the Eucalyptus samples (the domain XML a launch boots);
#  2. a Eucalyptus NC launch played on the local libvirtd with the real hook:
#     the guest prints the command line it booted with.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/deps.sh
make --no-print-directory build
samples=../shared/samples/eucalyptus
if [ -d "$samples" ]; then
	echo "== nchookd rewrite of the Eucalyptus 3.4.2 sample (user-data: $(grep -o '<userData>[^<]*' $samples/instance-3.4.xml | cut -c11- | base64 -d))" >&2
	bin/nchookd rewrite --config /dev/null --instance-xml $samples/instance-3.4.xml --domain-xml $samples/instance-libvirt-3.4.2.xml \
		| diff -u $samples/instance-libvirt-3.4.2.xml - || true
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: the launch on libvirt needs root (it starts libvirtd); stopping here" >&2
	exit 0
fi
scripts/libvirtd.sh start
echo "== an NC launch on local libvirt, through the real hook and nchookd" >&2
KSCLOUD_TEST_LIBVIRT=qemu:///system go test -count=1 -v -run 'TestE2ENCLaunch/daemon' ./test/e2e 2>&1 | grep -E 'pre-boot|PASS|FAIL|ok|guest saw'
