#!/usr/bin/env bash
# Prints the path of the old-glibc sysroot that `make packages` links the
# cgo binaries (nchookd, kscloud) against, making it first if it is missing;
# with --cc, the C compiler command that builds and links against it (the
# CC of the cgo build).
#
# The sysroot is Debian 11 (bullseye)'s libc6, libc6-dev and linux-libc-dev
# (glibc 2.31) unpacked with dpkg-deb -x. Linked against it, the binaries
# reference no symbol newer than GLIBC_2.14 (memcpy): they load on CentOS 7
# (glibc 2.17) and newer; scripts/test-compat.sh checks the floor. Bullseye
# rather than an older suite: it is the oldest one deb.debian.org still
# serves, and glibc 2.31 still has libpthread, libdl and libresolv as
# separate libraries, so nothing links to the GLIBC_2.34 symbols glibc
# gained when it merged them into libc.
#
# Verified download: InRelease is checked with gpgv against the Debian
# archive keyring (debian-archive-keyring), Packages.xz against the SHA256
# InRelease lists, every .deb against the SHA256 Packages lists.
#
# Cached outside the clone (later clones and CI runs on the machine reuse
# it): $KSCLOUD_SYSROOT_CACHE, else /var/cache/kscloud-build when writable,
# else ~/.cache/kscloud-build. Delete the directory to refresh it.
# KSCLOUD_SYSROOT_MIRROR overrides the mirror (default: the host's Debian
# mirror, else http://deb.debian.org/debian).
set -euo pipefail
print=root
case "${1:-}" in
--cc) print=cc ;;
"") ;;
*)
	echo "usage: scripts/sysroot.sh [--cc]" >&2
	exit 2
	;;
esac
suite=bullseye
pkgs=(libc6 libc6-dev linux-libc-dev)
arch=$(dpkg --print-architecture)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

if [ -n "${KSCLOUD_SYSROOT_CACHE:-}" ]; then
	cache=$KSCLOUD_SYSROOT_CACHE
elif mkdir -p /var/cache/kscloud-build 2>/dev/null && [ -w /var/cache/kscloud-build ]; then
	cache=/var/cache/kscloud-build
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/kscloud-build
fi
root=$cache/sysroot-$suite-$arch
# gcc --sysroot takes headers from the sysroot, but Debian's gcc searches
# the host's /usr/lib/<triplet> (as …/gcc/<triplet>/12/../../../<triplet>)
# for crt*.o and libraries before the sysroot's: -B and -L put the
# sysroot's first (else -lresolv finds glibc 2.36's libresolv.so, which
# has no __res_search to link to).
out() {
	if [ "$print" = cc ]; then
		local t
		t=$(gcc -dumpmachine)
		echo "gcc --sysroot=$root -B$root/usr/lib/$t/ -L$root/usr/lib/$t -L$root/lib/$t"
	else
		echo "$root"
	fi
}
if [ -s "$root/.complete" ]; then
	out
	exit 0
fi

mirror=${KSCLOUD_SYSROOT_MIRROR:-$("$(dirname "$0")"/debroot.sh --mirror)}
die() {
	echo "sysroot: $*" >&2
	exit 1
}
[ -r "$keyring" ] || die "$keyring missing (apt-get install debian-archive-keyring)"

mkdir -p "$cache"
# One maker at a time (parallel builds on the machine share the cache).
exec 9>"$cache/.sysroot-$suite-$arch.lock"
flock 9
if [ -s "$root/.complete" ]; then
	out
	exit 0
fi
tmp=$(mktemp -d "$cache/.sysroot-tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
get() { # URL FILE
	curl -fsSL --retry 3 -o "$2" "$1" || die "download $1 failed"
}
sha_ok() { # FILE SHA256
	[ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

echo "sysroot: making $root from $suite's ${pkgs[*]} ($mirror)" >&2
get "$mirror/dists/$suite/InRelease" "$tmp/InRelease"
gpgv --keyring "$keyring" --output "$tmp/Release" "$tmp/InRelease" 2>"$tmp/gpgv.log" ||
	die "$mirror/dists/$suite/InRelease: bad signature: $(grep -v '^gpgv: \(Signature made\|  \)' "$tmp/gpgv.log" | tr '\n' ' ')"
idx=main/binary-$arch/Packages.xz
want=$(awk -v f="$idx" '/^SHA256:/ {s = 1; next} /^[^ ]/ {s = 0} s && $3 == f {print $1}' "$tmp/Release")
[ -n "$want" ] || die "$suite's Release lists no $idx"
get "$mirror/dists/$suite/$idx" "$tmp/Packages.xz"
sha_ok "$tmp/Packages.xz" "$want" || die "$mirror/dists/$suite/$idx: SHA256 differs from the signed Release"
xz -dc "$tmp/Packages.xz" >"$tmp/Packages"

mkdir "$tmp/root"
for p in "${pkgs[@]}"; do
	read -r file sha ver < <(awk -v p="$p" '
		/^Package: / {pkg = $2; f = s = v = ""}
		pkg == p && /^Filename: / {f = $2}
		pkg == p && /^SHA256: / {s = $2}
		pkg == p && /^Version: / {v = $2}
		pkg == p && /^$/ && f != "" {print f, s, v; exit}
		END {if (pkg == p && f != "") print f, s, v}' "$tmp/Packages")
	[ -n "${file:-}" ] || die "$suite has no package $p for $arch"
	get "$mirror/$file" "$tmp/$p.deb"
	sha_ok "$tmp/$p.deb" "$sha" || die "$mirror/$file: SHA256 differs from the signed Packages"
	dpkg-deb -x "$tmp/$p.deb" "$tmp/root"
	echo "$p $ver $sha" >>"$tmp/root/.complete"
	rm -f "$tmp/$p.deb"
done
# Absolute symlinks (libdl.so -> /lib/…/libdl.so.2) would reach the host's
# libraries: point them inside the sysroot.
find "$tmp/root" -type l -lname '/*' | while read -r l; do
	t=$(readlink "$l")
	ln -sfn "$(realpath -m --relative-to="$(dirname "$l")" "$tmp/root$t")" "$l"
done
# What gcc --sysroot and the Go linker need is there.
for f in usr/include/stdio.h "usr/lib/$(gcc -dumpmachine)/crt1.o" "usr/lib/$(gcc -dumpmachine)/libc.so"; do
	[ -e "$tmp/root/$f" ] || die "the unpacked sysroot has no /$f"
done
rm -rf "$root"
mv "$tmp/root" "$root"
echo "sysroot: $(du -sh "$root" | cut -f1) in $root: $(cut -d' ' -f1,2 "$root/.complete" | tr '\n' ' ')" >&2
out
