#!/usr/bin/env bash
# README's first command (make demo): on a fresh Debian machine, as root,
# install what is missing, build, start libvirtd, build the small test
# installer, bake examples/minimal.ks into an image on local libvirt, boot
# a copy of the image and show the marker its installed system prints.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: run as root (it installs packages and starts libvirtd)" >&2
	exit 1
fi
scripts/deps.sh
make --no-print-directory build test-installer
scripts/libvirtd.sh start >/dev/null
ks=examples/minimal.ks
echo "== kscloud lint $ks" >&2
bin/kscloud lint "$ks" >&2 || true
echo "== kscloud bake: install $ks onto a fresh volume, snapshot it into an image" >&2
out=$(bin/kscloud bake --ks "$ks" --kernel build/test-installer/vmlinuz --initrd build/test-installer/initrd.img \
	--disk 1 --name demo --extra-args no_timer_check --output json)
echo "$out"
name=$(printf '%s' "$out" | sed -n 's/.*"image_name": "\([^"]*\)".*/\1/p')
echo "== kscloud run --image $name: boot a copy-on-write clone of the image" >&2
bin/kscloud run --image "$name"
echo "== done. See: bin/kscloud images list; bin/kscloud images show $name; bin/kscloud status" >&2
