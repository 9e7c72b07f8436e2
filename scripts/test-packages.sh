#!/usr/bin/env bash
# Install test of the packages built by `make packages` (build/packages/):
# into a minimal Debian (debootstrap --variant=minbase, bookworm, with
# systemd and libvirt0 as a node has them), chrooted:
#   .deb: dpkg -i, files/modes/conffile/group, systemd-analyze verify, the
#         hook and binaries run, upgrade keeps an edited config and a running
#         daemon, and restarts it only when the new nchookd accepts the
#         config (systemctl a stand-in that logs: systemd is not PID 1 in a
#         chroot; test-systemd.sh upgrades under a real one), dpkg -r takes
#         the hook out, dpkg -P removes the install records and keeps (and
#         says so) the installer files an operator put in /var/lib/nchookd,
#         and leaves nothing else. The root
#         is also an OpenNebula frontend: the OpenNebula deploy wrapper goes
#         in place (dpkg diversion; a rename with rpm) and out again.
#   .rpm: the same with the host's rpm --root (--nodeps: the root's libvirt
#         is a dpkg package the rpm database does not know), rpm -U, rpm -e.
# The root is a fresh copy of the cached bootstrapped one (scripts/debroot.sh).
# Needs root; off CI it skips without root, in CI (CI set) it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	if [ -n "${CI:-}" ]; then
		echo "test-packages: FAIL: needs root (debootstrap, chroot, dpkg in a root)" >&2
		exit 1
	fi
	echo "test-packages: SKIP: needs root (debootstrap, chroot, dpkg in a root)" >&2
	exit 0
fi
start=$(date +%s)
pkgdir=build/packages
deb_n=$(ls $pkgdir/nchookd_*.deb) deb_k=$(ls $pkgdir/kscloud_*.deb)
rpm_n=$(ls $pkgdir/nchookd-*.rpm) rpm_k=$(ls $pkgdir/kscloud-*.rpm)
work=build/pkgtest
R=$work/root
fails=0
fail() { echo "test-packages: FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "test-packages: ok: $*" >&2; }
in_root() { chroot "$R" "$@"; }

cleanup() {
	for m in proc dev/pts dev; do mountpoint -q "$R/$m" && umount -l "$R/$m"; done
	[ -n "${daemon_pid:-}" ] && kill "$daemon_pid" 2>/dev/null
	true
}
trap cleanup EXIT

scripts/debroot.sh "$R"
mount -t proc proc "$R/proc"
mkdir -p "$R/tmp/pkgs"
cp "$deb_n" "$deb_k" "$rpm_n" "$rpm_k" "$R/tmp/pkgs/"
# The cloud's hook user and its instances directory, as the Eucalyptus NC
# package creates them (nchookd check and the daemon refuse a missing
# instances root).
in_root useradd --system --home-dir /var/lib/eucalyptus --shell /usr/sbin/nologin eucalyptus
in_root install -d -o eucalyptus -g eucalyptus -m 0755 /var/lib/eucalyptus
in_root install -d -o eucalyptus -g eucalyptus -m 0771 /var/lib/eucalyptus/instances
# An OpenNebula frontend's KVM deploy script (as the opennebula package
# leaves it): the packages put nchookd's wrapper in place and take it out.
one_kvm=/var/lib/one/remotes/vmm/kvm
one_stock='#!/bin/bash
# OpenNebula KVM deploy (stand-in)'
mkdir -p "$R$one_kvm"
printf '%s\n' "$one_stock" >"$R$one_kvm/deploy"
chmod 0755 "$R$one_kvm/deploy"

# snapshot: every path of the root but the package managers' own records.
snapshot() {
	(cd "$R" && find . -xdev \( -path ./proc -o -path ./tmp -o -path ./var/lib/dpkg -o -path ./var/lib/rpm \
		-o -path ./var/log -o -path ./var/cache -o -path ./usr/lib/sysimage -o -path ./run/systemd \) -prune -o -print | sort)
	in_root getent group | cut -d: -f1,4 | sed 's/^/group:/' | sort
}
before=$(snapshot)

# mode owner group path
check_files() {
	local what=$1
	shift
	while read -r mode owner group path; do
		[ -n "$path" ] || continue
		got=$(stat -c '%a %U %G' "$R$path" 2>/dev/null || echo missing)
		[ "$got" = "$mode $owner $group" ] || fail "$what: $path: $got, want $mode $owner $group"
	done
}
files_n="755 root root /usr/sbin/nchookd
755 root root /usr/lib/nchookd/nchookd-euca-hook
755 root root /etc/eucalyptus/nc-hooks/nchookd
644 root root /usr/lib/systemd/system/nchookd.service
644 root root /usr/lib/systemd/system/nchookd.socket
644 root root /usr/lib/sysusers.d/nchookd.conf
644 root root /usr/lib/tmpfiles.d/nchookd.conf
644 root root /etc/nchookd/nchookd.toml
644 root root /usr/share/man/man8/nchookd.8.gz"
files_k="755 root root /usr/bin/kscloud
644 root root /usr/share/man/man1/kscloud.1.gz
644 root root /usr/share/bash-completion/completions/kscloud
644 root root /usr/share/fish/vendor_completions.d/kscloud.fish"

# checks after an install, for either format ($1: deb|rpm)
check_installed() {
	local f=$1
	check_files "$f" <<<"$files_n"
	check_files "$f" <<<"$files_k"
	if [ "$f" = deb ]; then
		check_files "$f" <<<"644 root root /usr/share/zsh/vendor-completions/_kscloud"
	else
		check_files "$f" <<<"644 root root /usr/share/zsh/site-functions/_kscloud"
	fi
	in_root getent group nchookd >/dev/null || fail "$f: group nchookd not created"
	in_root id -nG eucalyptus | tr ' ' '\n' | grep -qx nchookd || fail "$f: user eucalyptus not in group nchookd"
	# Nothing enabled: no unit symlink anywhere under /etc/systemd.
	if find "$R/etc/systemd" -name 'nchookd.*' | grep -q .; then
		fail "$f: units enabled on install: $(find "$R/etc/systemd" -name 'nchookd.*')"
	fi
	if out=$(in_root systemd-analyze verify --man=no /usr/lib/systemd/system/nchookd.socket /usr/lib/systemd/system/nchookd.service 2>&1); then
		ok "$f: systemd-analyze verify"
	else
		fail "$f: systemd-analyze verify: $out"
	fi
	[ -n "$out" ] && echo "$out" | sed 's/^/    /' >&2
	# The binaries load in the root (libvirt.so.0 via dlopen; libc only linked).
	in_root /usr/sbin/nchookd version >/dev/null || fail "$f: nchookd version"
	in_root /usr/bin/kscloud version >/dev/null || fail "$f: kscloud version"
	in_root /usr/sbin/nchookd check >/dev/null 2>&1 ||
		fail "$f: nchookd check of the packaged config: $(in_root /usr/sbin/nchookd check 2>&1 | tail -3)"
	# The NC runs the dispatcher for every event; an ignored one returns 0 at once.
	in_root /etc/eucalyptus/nc-hooks/nchookd euca-nc-pre-hyp-check /var/lib/eucalyptus ||
		fail "$f: hook for an ignored event exited $?"
	# pre-boot without an instance directory: the static hook runs and refuses in one line.
	if msg=$(in_root /etc/eucalyptus/nc-hooks/nchookd euca-nc-pre-boot /var/lib/eucalyptus 2>&1); then
		fail "$f: pre-boot without an instance directory succeeded"
	elif [ "$(printf '%s\n' "$msg" | wc -l)" -ne 1 ]; then
		fail "$f: pre-boot error is not one line: $msg"
	fi
	# OpenNebula: the wrapper is deploy, OpenNebula's script deploy.one.
	grep -q "nchookd's OpenNebula deploy wrapper" "$R$one_kvm/deploy" || fail "$f: $one_kvm/deploy is not nchookd's wrapper"
	[ "$(cat "$R$one_kvm/deploy.one" 2>/dev/null)" = "$one_stock" ] || fail "$f: OpenNebula's deploy is not $one_kvm/deploy.one"
	[ -x "$R$one_kvm/deploy" ] || fail "$f: the wrapper is not executable"
	check_files "$f" <<<"755 root root /usr/lib/nchookd/nchookd-one-deploy
755 root root /usr/lib/nchookd/nchookd-one-setup
755 root root /usr/share/nchookd/opennebula/deploy
755 root root /usr/lib/nchookd/nchookd-one-monitor
755 root root /usr/share/nchookd/opennebula/nchookd-probe"
	# The static Go half runs in the root: no vm.xml, one line, the original runs.
	if out=$(echo '<domain><name>one-1</name><os><type>hvm</type></os></domain>' |
		in_root "$one_kvm/deploy" /tmp/one-vm/deployment.0 node1 2>&1 >/dev/null); then
		[ "$(printf '%s\n' "$out" | grep -c 'nchookd: ')" -eq 1 ] || fail "$f: wrapper without vm.xml: $out"
	else
		fail "$f: the installed wrapper failed: $out"
	fi
	ok "$f: files, modes, group, binaries, OpenNebula deploy wrapper"
}

# A newer version of a built package (same contents), for upgrade tests.
bump() { # format [n] → path of nchookd package with version+.n (default 1)
	local f=$1 v
	v=$(scripts/pkgversion.sh).${2:-1}
	rm -rf "$work/next" && mkdir -p "$work/next"
	PKG_VERSION=$v PKG_ARCH=$(dpkg --print-architecture) build/nfpm package --config packaging/nfpm/nchookd.yaml \
		--packager "$f" --target "$work/next/" >/dev/null
	ls "$work/next/"nchookd*."$f"
}

# systemd as PID 1, for the postinst's restart decision: /run/systemd/system
# and a systemctl that logs what it is asked to /tmp/systemctl.log and says
# nchookd.service is active (the daemon start_daemon runs). The root's
# systemctl is put back by "fake_systemd off".
fake_systemd() {
	if [ "$1" = on ]; then
		mkdir -p "$R/run/systemd/system"
		mv "$R/usr/bin/systemctl" "$R/usr/bin/systemctl.real"
		# is-active answers 3 (inactive) while /tmp/systemctl.inactive exists.
		printf '%s\n' '#!/bin/sh' 'echo "$*" >>/tmp/systemctl.log' \
			'case "$*" in *is-active*) [ ! -e /tmp/systemctl.inactive ] || exit 3 ;; esac' 'exit 0' >"$R/usr/bin/systemctl"
		chmod 0755 "$R/usr/bin/systemctl"
		: >"$R/tmp/systemctl.log"
	else
		mv "$R/usr/bin/systemctl.real" "$R/usr/bin/systemctl"
		rm -rf "$R/run/systemd/system"
	fi
}

# upgrade_restarts FORMAT INSTALL-COMMAND...: with a running daemon and the
# operator's edited config, an upgrade whose nchookd accepts the config
# try-restarts the daemon and says nothing; with an edit the new nchookd
# refuses (an unknown key; the running daemon refused it at its reload and
# keeps the previous one), the upgrade leaves the daemon running, does not
# restart it and says so in one line; with the unit stopped (is-active
# says inactive), the upgrade starts nothing and says nothing. The edited
# file is kept each time.
upgrade_restarts() {
	local f=$1 n out pkg said
	shift
	fake_systemd on
	for n in 2 3 4; do
		next=$(bump "$f" "$n")
		cp "$next" "$R/tmp/pkgs/next.$f"
		if [ "$n" = 3 ]; then
			echo 'no_such_key = 1 # a typo of the operator' >>"$R/etc/nchookd/nchookd.toml"
			sleep 0.5 # the running daemon's reload refuses it
		fi
		if [ "$n" = 4 ]; then
			sed -i '/^no_such_key/d' "$R/etc/nchookd/nchookd.toml"
			touch "$R/tmp/systemctl.inactive"
		fi
		: >"$R/tmp/systemctl.log"
		pkg=/tmp/pkgs/next.$f
		[ "$f" = rpm ] && pkg=$R$pkg # rpm --root takes the host's path
		out=$("$@" "$pkg" 2>&1) || fail "$f upgrade to .$n: $out"
		grep -q '^# edited by the operator' "$R/etc/nchookd/nchookd.toml" || fail "$f upgrade to .$n: the edited config was replaced"
		daemon_alive || fail "$f upgrade to .$n: the running daemon stopped"
		said=$(printf '%s\n' "$out" | grep '^nchookd: ' || true)
		if [ "$n" = 2 ]; then
			grep -q '^try-restart nchookd.service' "$R/tmp/systemctl.log" ||
				fail "$f upgrade, config accepted: no try-restart of nchookd.service: $(tr '\n' ';' <"$R/tmp/systemctl.log")"
			[ -z "$said" ] || fail "$f upgrade, config accepted: said $said"
		elif [ "$n" = 4 ]; then
			if grep -Eq 'restart|start ' "$R/tmp/systemctl.log"; then
				fail "$f upgrade, unit stopped: the upgrade started it: $(tr '\n' ';' <"$R/tmp/systemctl.log")"
			fi
			[ -z "$said" ] || fail "$f upgrade, unit stopped: said $said"
		else
			if grep -q 'restart' "$R/tmp/systemctl.log"; then
				fail "$f upgrade, config refused: the daemon was restarted: $(tr '\n' ';' <"$R/tmp/systemctl.log")"
			fi
			if [ "$(printf '%s\n' "$said" | grep -c .)" -ne 1 ] ||
				! printf '%s\n' "$said" | grep -q 'not restarted.*no_such_key.*old daemon keeps running'; then
				fail "$f upgrade, config refused: want one line saying the daemon was not restarted and why, got: $out"
			fi
			grep -q '^no_such_key' "$R/etc/nchookd/nchookd.toml" || fail "$f upgrade to .$n: the edited config was replaced"
		fi
	done
	rm -f "$R/tmp/systemctl.inactive"
	fake_systemd off
	ok "$f: upgrade restarts a running daemon only into a config the new nchookd accepts, and starts no stopped one"
}

# A daemon running across the upgrade: dpkg/rpm scripts must not stop it
# (without systemd as PID 1 the try-restart is systemctl's no-op; with it,
# systemctl try-restart restarts a running unit, tested on real nodes).
start_daemon() {
	mkdir -p "$R/run/nchookd"
	chroot "$R" /usr/sbin/nchookd serve >"$work/daemon.log" 2>&1 &
	daemon_pid=$!
	for _ in $(seq 50); do
		[ -S "$R/run/nchookd/nchookd.sock" ] && return 0
		sleep 0.1
	done
	fail "daemon did not create its socket: $(cat "$work/daemon.log")"
}
daemon_alive() {
	kill -0 "$daemon_pid" 2>/dev/null && [ -S "$R/run/nchookd/nchookd.sock" ]
}
stop_daemon() {
	kill "$daemon_pid" 2>/dev/null || true
	wait "$daemon_pid" 2>/dev/null || true
	daemon_pid=
}

# ---- .deb ----
t0=$(date +%s)
in_root dpkg -i /tmp/pkgs/"$(basename "$deb_n")" /tmp/pkgs/"$(basename "$deb_k")" >"$work/dpkg.log" 2>&1 ||
	{ fail "dpkg -i: $(tail -5 "$work/dpkg.log")"; }
grep -qx /etc/nchookd/nchookd.toml "$R/var/lib/dpkg/info/nchookd.conffiles" || fail "deb: nchookd.toml is not a conffile"
check_installed deb
echo '# edited by the operator' >>"$R/etc/nchookd/nchookd.toml"
start_daemon
next=$(bump deb)
cp "$next" "$R/tmp/pkgs/next.deb"
in_root dpkg -i /tmp/pkgs/next.deb >>"$work/dpkg.log" 2>&1 || fail "deb upgrade: $(tail -5 "$work/dpkg.log")"
grep -q '^# edited by the operator' "$R/etc/nchookd/nchookd.toml" || fail "deb upgrade: the edited config was replaced"
daemon_alive || fail "deb upgrade: the running daemon stopped"
[ -x "$R/etc/eucalyptus/nc-hooks/nchookd" ] || fail "deb upgrade: hook gone"
in_root dpkg-divert --list "$one_kvm/deploy" | grep -q "to $one_kvm/deploy.one by nchookd" || fail "deb: no dpkg diversion of $one_kvm/deploy"
grep -q "nchookd's OpenNebula deploy wrapper" "$R$one_kvm/deploy" || fail "deb upgrade: the wrapper is gone"
upgrade_restarts deb in_root dpkg -i
stop_daemon
in_root dpkg -r nchookd kscloud >>"$work/dpkg.log" 2>&1 || fail "dpkg -r: $(tail -5 "$work/dpkg.log")"
[ ! -e "$R/etc/eucalyptus/nc-hooks/nchookd" ] || fail "deb remove: the hook is still in nc-hooks/"
[ "$(cat "$R$one_kvm/deploy")" = "$one_stock" ] && [ ! -e "$R$one_kvm/deploy.one" ] || fail "deb remove: OpenNebula's deploy not back in place"
[ ! -e "$R/usr/sbin/nchookd" ] || fail "deb remove: /usr/sbin/nchookd left"
[ -e "$R/etc/nchookd/nchookd.toml" ] || fail "deb remove: the conffile went before purge"
# What purge finds in the state directory: install records (the daemon's)
# and an installer of the operator's catalog, where the shipped config's
# example puts it.
mkdir -p "$R/var/lib/nchookd/instances" "$R/var/lib/nchookd/installers/fedora40"
echo '{"instance":"i-1"}' >"$R/var/lib/nchookd/instances/i-1.json"
echo 'bad' >"$R/var/lib/nchookd/instances/i-2.json.corrupt"
echo kernel >"$R/var/lib/nchookd/installers/fedora40/vmlinuz"
echo initrd >"$R/var/lib/nchookd/installers/fedora40/initrd.img"
out=$(in_root dpkg -P nchookd kscloud 2>&1) || fail "dpkg -P: $(tail -5 <<<"$out")"
printf '%s\n' "$out" >>"$work/dpkg.log"
[ ! -e "$R/var/lib/nchookd/instances" ] || fail "deb purge: the install records are left: $(ls "$R/var/lib/nchookd/instances")"
if [ "$(cat "$R/var/lib/nchookd/installers/fedora40/vmlinuz" "$R/var/lib/nchookd/installers/fedora40/initrd.img" 2>&1)" != "kernel
initrd" ]; then
	fail "deb purge: removed the operator's installer in /var/lib/nchookd/installers/fedora40"
fi
said=$(grep '^nchookd: ' <<<"$out" || true)
[ "$(grep -c . <<<"$said")" -eq 1 ] && grep -q 'kept /var/lib/nchookd' <<<"$said" ||
	fail "deb purge: want one line saying /var/lib/nchookd was kept, got: $out"
# Only the operator's installers are left there; the operator removes them
# (and the directory they kept); nothing else may be left.
left=$(cd "$R/var/lib/nchookd" && ls -A)
[ "$left" = installers ] || fail "deb purge: /var/lib/nchookd holds more than the operator's installers: $(tr '\n' ' ' <<<"$left")"
rm -rf "$R/var/lib/nchookd"
after=$(snapshot)
if [ "$before" != "$after" ]; then
	fail "deb purge left: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"
else
	ok "deb: remove took the hook out, purge removed the install records, kept the operator's installers and left nothing else ($(($(date +%s) - t0)) s)"
fi

# ---- .rpm ----
t0=$(date +%s)
rpmr() { rpm --root "$PWD/$R" --dbpath /var/lib/rpm "$@"; }
rpmr --initdb
rpmr -i --nodeps "$R/tmp/pkgs/$(basename "$rpm_n")" "$R/tmp/pkgs/$(basename "$rpm_k")" >"$work/rpm.log" 2>&1 ||
	fail "rpm -i: $(tail -5 "$work/rpm.log")"
rpmr -qc nchookd | grep -qx /etc/nchookd/nchookd.toml || fail "rpm: nchookd.toml is not a config file"
check_installed rpm
echo '# edited by the operator' >>"$R/etc/nchookd/nchookd.toml"
start_daemon
next=$(bump rpm)
rpmr -U --nodeps "$next" >>"$work/rpm.log" 2>&1 || fail "rpm -U: $(tail -5 "$work/rpm.log")"
grep -q '^# edited by the operator' "$R/etc/nchookd/nchookd.toml" || fail "rpm upgrade: the edited config was replaced"
daemon_alive || fail "rpm upgrade: the running daemon stopped"
[ -x "$R/etc/eucalyptus/nc-hooks/nchookd" ] || fail "rpm upgrade: hook gone (old %preun/%postun ran as erase?)"
grep -q "nchookd's OpenNebula deploy wrapper" "$R$one_kvm/deploy" || fail "rpm upgrade: the wrapper is gone"
if in_root dpkg-divert --list "$one_kvm/deploy" | grep -q nchookd; then fail "rpm: a dpkg diversion was made"; fi
upgrade_restarts rpm rpmr -U --nodeps
stop_daemon
rpmr -e nchookd kscloud >>"$work/rpm.log" 2>&1 || fail "rpm -e: $(tail -5 "$work/rpm.log")"
[ "$(cat "$R$one_kvm/deploy")" = "$one_stock" ] && [ ! -e "$R$one_kvm/deploy.one" ] || fail "rpm erase: OpenNebula's deploy not back in place"
# rpm keeps an edited config as .rpmsave and, like rpm packages do, the
# group; nothing else may be left.
rm -f "$R/etc/nchookd/nchookd.toml.rpmsave" && rmdir "$R/etc/nchookd" 2>/dev/null || true
after=$(snapshot)
left=$(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | grep -v '^> group:nchookd:' || true)
if [ -n "$left" ]; then
	fail "rpm erase left: $(echo "$left" | tr '\n' ' ')"
else
	ok "rpm: erase took the hook out and left only the group nchookd ($(($(date +%s) - t0)) s)"
fi

echo "test-packages: $(($(date +%s) - start)) s, $fails failure(s)" >&2
[ "$fails" -eq 0 ]
