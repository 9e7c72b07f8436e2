#!/usr/bin/env bash
# The hardened nchookd.service under a real systemd: the .deb built by
# `make packages` is installed into a fresh minimal Debian bookworm root
# (scripts/debroot.sh) that boots with systemd as its PID 1 in a container
# (systemd-nspawn -b, private network; no systemd on the host needed).
# Inside it:
#   - systemctl start nchookd.socket nchookd.service: active (Type=notify,
#     WatchdogSec=30s) with no libvirtd in the container: the daemon serves
#     (nchookd status: libvirt not connected)
#   - the sandbox is in force on the running daemon, not only in the unit
#     file: seccomp, no new privileges, its three capabilities, / read-only,
#     the instances root and its state writable, a private /dev, the BPF IP
#     firewall (UDP from its cgroup to 127.0.0.1 passes, to another address
#     fails with EPERM)
#   - systemd-analyze security nchookd.service: exposure OK or better (< 5.0)
#   - the Eucalyptus NC's pre-boot hook, run as user eucalyptus through the
#     packaged dispatcher on an instance directory written as the NC 3.4
#     writes it (test/samples/eucalyptus; user-data
#     bootparams=ks=http://10.0.0.1/ks.cfg): the daemon rewrote the domain
#     (nchookd status follows the instance; the unit's journal names it)
#   - a config edit and systemctl reload are reloaded by the same process
#   - systemctl restart with WatchdogSec=2s: the same daemon 5 s later (its
#     pings arrive), the install still known, and connected to the host's
#     libvirtd (when one runs: scripts/test.sh starts it; in CI required)
#   - no error in the unit's journal
#   - dpkg -i of a newer .deb while the daemon runs: postinst restarts it
#     (a new MainPID, the new version, active, serving, the install still
#     known, the edited config kept); with an edit the new nchookd check
#     refuses, the old daemon keeps running (same MainPID, serving) and the
#     upgrade says so in one line
#   - systemctl stop ends cleanly (exit 0, socket removed); the container
#     powers off, nspawn exits 0
# The unit's journal is left in build/systemdtest/nchookd-journal.txt, the
# security report in build/systemdtest/security.txt.
# Needs root and systemd-nspawn (systemd-container); off CI it skips
# without them, in CI (CI set) it fails. A host without any cgroup
# hierarchy mounted gets cgroup2 on /sys/fs/cgroup for the run.
set -euo pipefail
cd "$(dirname "$0")/.."
need() {
	if [ -n "${CI:-}" ]; then
		echo "test-systemd: FAIL: $*" >&2
		exit 1
	fi
	echo "test-systemd: SKIP: $*" >&2
	exit 0
}
[ "$(id -u)" -eq 0 ] || need "needs root (debootstrap, chroot, systemd-nspawn)"
command -v systemd-nspawn >/dev/null || need "needs systemd-nspawn (apt-get install systemd-container; scripts/deps.sh does)"
start=$(date +%s)
deb_n=$(ls build/packages/nchookd_*.deb 2>/dev/null) ||
	{ echo "test-systemd: FAIL: no build/packages/nchookd_*.deb (make packages)" >&2; exit 1; }
work=build/systemdtest
R=$work/root
fails=0
fail() { echo "test-systemd: FAIL: $*" >&2; fails=$((fails + 1)); }
ok() { echo "test-systemd: ok: $*" >&2; }
nspawn_pid= leader= cgmount=

cleanup() {
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		# SIGTERM: nspawn asks the container's systemd to halt; then kill it.
		kill "$nspawn_pid" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$nspawn_pid" 2>/dev/null || true
		# the container's init: its PID namespace (every process in it) ends with it
		[ -n "$leader" ] && kill -9 "$leader" 2>/dev/null
		wait "$nspawn_pid" 2>/dev/null || true
	fi
	for m in proc; do mountpoint -q "$R/$m" && umount -l "$R/$m"; done
	[ -n "$cgmount" ] && umount /sys/fs/cgroup
	true
}
trap cleanup EXIT

# systemd-nspawn needs a cgroup hierarchy on the host (cgroup2, or the
# v1/hybrid one a systemd host has); a host without any gets cgroup2.
if ! mountpoint -q /sys/fs/cgroup; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup
	cgmount=1
	echo "test-systemd: no cgroup hierarchy on the host: mounted cgroup2 on /sys/fs/cgroup for the run" >&2
fi

# ---- the root: Debian, the NC's user and instances root, the .deb ----
scripts/debroot.sh "$R"
in_root() { chroot "$R" "$@"; }
mount -t proc proc "$R/proc"
in_root useradd --system --home-dir /var/lib/eucalyptus --shell /usr/sbin/nologin eucalyptus
in_root install -d -o eucalyptus -g eucalyptus -m 0755 /var/lib/eucalyptus
in_root install -d -o eucalyptus -g eucalyptus -m 0771 /var/lib/eucalyptus/instances
mkdir -p "$R/tmp/pkgs"
cp "$deb_n" "$R/tmp/pkgs/"
in_root dpkg -i /tmp/pkgs/"$(basename "$deb_n")" >"$work/dpkg.log" 2>&1 ||
	{ echo "test-systemd: FAIL: dpkg -i: $(tail -5 "$work/dpkg.log")" >&2; exit 1; }
umount "$R/proc"
rm -rf "$R/tmp/pkgs"

# An instance directory as the Eucalyptus NC 3.4 writes it
# (test/samples/eucalyptus): instance.xml, the domain its XSLT made, the
# instance's kernel and ramdisk; user-data asks for a kickstart install.
id=i-5D1E0001
idir=/var/lib/eucalyptus/instances/work/AIDATESTSYSTEMD/$id
ud=$(printf 'bootparams=ks=http://10.0.0.1/ks.cfg\n' | base64 -w0)
mkdir -p "$R$idir"
sed -e "s|/var/lib/eucalyptus/instances/work/AIDAxxxxxxxxxxxxxxxxx/i-3A2B41C0|$idir|g" -e "s|i-3A2B41C0|$id|g" \
	-e "s|<userData>.*</userData>|<userData>$ud</userData>|" test/samples/eucalyptus/instance-3.4.xml >"$R$idir/instance.xml"
sed -e "s|/var/lib/eucalyptus/instances/work/AIDAxxxxxxxxxxxxxxxxx/i-3A2B41C0|$idir|g" -e "s|i-3A2B41C0|$id|g" \
	test/samples/eucalyptus/instance-libvirt-3.4.2.xml >"$R$idir/instance-libvirt.xml"
echo kernel >"$R$idir/link-to-kernel"
echo ramdisk >"$R$idir/link-to-ramdisk"
: >"$R$idir/link-to-sda"
in_root chown -R eucalyptus:eucalyptus /var/lib/eucalyptus/instances/work
in_root chmod -R go-w /var/lib/eucalyptus/instances/work

# ---- boot ----
# --register=no --keep-unit: no machined or systemd on the host to ask;
# --machine: a name of this run's own (nspawn keeps per-name state in
# /run/systemd/nspawn), so that runs in other clones do not meet.
# --system-call-filter=bpf: nspawn's own seccomp filter refuses bpf(),
# without which the container's systemd has no BPF firewall (IPAddressDeny=)
# and no BPF device policy (PrivateDevices=); it says so only at debug level.
# systemd's console output goes to the journal (no tty here); on failure
# the container's journal is printed.
# The host's libvirtd (scripts/libvirtd.sh start; scripts/test.sh starts
# it), for the daemon's restart: its sockets bound into the container at
# /run/host-libvirt.
host_libvirt=
if [ -S /run/libvirt/libvirt-sock ]; then
	host_libvirt=--bind-ro=/run/libvirt:/run/host-libvirt
elif [ -n "${CI:-}" ]; then
	fail "no libvirtd on the host (/run/libvirt/libvirt-sock): the daemon's libvirt connection from the sandbox is not checked"
else
	echo "test-systemd: not checked: the sandboxed daemon's libvirt connection (no libvirtd on the host; scripts/libvirtd.sh start)" >&2
fi
t0=$(date +%s)
systemd-nspawn --quiet --register=no --keep-unit --private-network --console=pipe --system-call-filter=bpf $host_libvirt \
	--machine="nchookd-test-$$" -D "$R" -b </dev/null >"$work/nspawn.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 100); do
	leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
	[ -n "$leader" ] && break
	kill -0 "$nspawn_pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$leader" ]; then
	echo "test-systemd: FAIL: systemd-nspawn did not start the container's systemd:" >&2
	sed 's/^/    /' "$work/nspawn.log" >&2
	exit 1
fi
ct() { nsenter -t "$leader" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# (systemctl answers once the manager's socket is up; --wait then waits
# for the boot to finish)
for _ in $(seq 300); do
	state=$(timeout 60 nsenter -t "$leader" -a systemctl is-system-running --wait 2>&1 || true)
	case $state in *"connect to bus"*) sleep 0.2 ;; *) break ;; esac
done
case $state in
running) ok "systemd booted as the container's PID 1 ($(($(date +%s) - t0)) s)" ;;
*)
	echo "test-systemd: FAIL: the container's systemd is $state:" >&2
	ct systemctl --failed --no-pager >&2 || true
	ct journalctl -b --no-pager -p warning | tail -30 >&2 || true
	exit 1
	;;
esac

journal_err() { ct journalctl -b --no-pager -o cat -u nchookd.service -u nchookd.socket -p err; }
dump() {
	ct systemctl status --no-pager -l nchookd.service nchookd.socket >&2 || true
	ct journalctl -b --no-pager -u nchookd.service -u nchookd.socket | tail -30 >&2 || true
}
prop() { ct systemctl show -P "$1" "${2:-nchookd.service}"; }

# ---- start ----
t0=$(date +%s)
if ct systemctl start nchookd.socket nchookd.service; then
	ok "systemctl start nchookd.socket nchookd.service: $(prop ActiveState)/$(prop SubState), $(prop ActiveState nchookd.socket) socket ($(($(date +%s) - t0)) s, no libvirtd)"
else
	fail "systemctl start"
	dump
	exit 1
fi
libvirt_state() { ct nchookd status --output json | sed -n 's/.*"libvirt": *"\([a-z ]*\)".*/\1/p'; }
lv=$(libvirt_state)
if [ "$lv" = "not connected" ]; then
	ok "no libvirtd in the container: the daemon serves; nchookd status: libvirt $lv"
else
	fail "without libvirtd in the container nchookd status says libvirt '$lv', want not connected"
fi
[ "$(prop Type)" = notify ] || fail "Type is $(prop Type), want notify"
[ "$(prop WatchdogUSec)" = 30s ] || fail "WatchdogUSec is $(prop WatchdogUSec), want 30s"
pid=$(prop MainPID)

# The sandbox in force on the running daemon (not only in the unit file).
st=$(ct cat "/proc/$pid/status")
[ "$(awk '$1 == "Seccomp:" {print $2}' <<<"$st")" = 2 ] || fail "daemon: no seccomp filter"
[ "$(awk '$1 == "NoNewPrivs:" {print $2}' <<<"$st")" = 1 ] || fail "daemon: NoNewPrivs not set"
# CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER
[ "$(awk '$1 == "CapBnd:" {print $2}' <<<"$st")" = 000000000000000b ] || fail "daemon: bounding set $(awk '$1 == "CapBnd:" {print $2}' <<<"$st"), want 000000000000000b"
in_ns() { ct nsenter -t "$pid" -m "$@"; }
in_ns findmnt -no OPTIONS / | grep -q '^ro' || fail "daemon: / is not read-only: $(in_ns findmnt -no OPTIONS /)"
in_ns findmnt -no OPTIONS /var/lib/eucalyptus/instances | grep -q '^rw' || fail "daemon: the instances root is not writable"
in_ns findmnt -no OPTIONS /var/lib/nchookd | grep -q '^rw' || fail "daemon: its state directory is not writable"
# PrivateDevices: the container's /dev/net/tun (--private-network) is not in the daemon's /dev.
if ! ct test -e /dev/net/tun; then
	fail "the container has no /dev/net/tun to hide"
elif in_ns test -e /dev/net/tun; then
	fail "daemon: sees /dev/net/tun (PrivateDevices)"
fi
# IPAddressDeny=any + IPAddressAllow=localhost (BPF on the unit's cgroup):
# a process in the daemon's cgroup sends to 127.0.0.1 but not to 10.9.9.9,
# an address put on the container's lo; outside the cgroup it can. (UDP: a
# dropped datagram fails the write with EPERM; a dropped TCP SYN is retried.)
nsenter -t "$leader" -n ip addr add 10.9.9.9/32 dev lo
cg=$(ct awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")
cgdir=/sys/fs/cgroup$cg
ct test -d /sys/fs/cgroup/unified && cgdir=/sys/fs/cgroup/unified$cg
probe() { # CGROUP_DIR|"" ADDRESS: "sent", or why not
	ct timeout 5 bash -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; echo x 2>&1 >"/dev/udp/$2/9" && echo sent' probe "$@" 2>&1 |
		sed 's/.*write error: //' || true
}
p_out=$(probe "" 10.9.9.9) p_lo=$(probe "$cgdir" 127.0.0.1) p_deny=$(probe "$cgdir" 10.9.9.9)
if [ "$p_out" != sent ] || [ "$p_lo" != sent ] || [ "$p_deny" != "Operation not permitted" ]; then
	fail "IPAddressDeny: UDP to 10.9.9.9 from outside the unit: '$p_out' (want sent); from its cgroup to 127.0.0.1: '$p_lo' (want sent), to 10.9.9.9: '$p_deny' (want Operation not permitted)"
fi
ok "sandbox in force: seccomp, no new privileges, bounding set chown/dac_override/fowner, / read-only, instances root and state writable, private /dev, IP traffic to localhost only"

# ---- systemd-analyze security ----
sec=$(ct systemd-analyze security --no-pager nchookd.service 2>&1 || true)
printf '%s\n' "$sec" >"$work/security.txt"
line=$(grep 'Overall exposure level for nchookd.service' <<<"$sec" || true)
score=$(sed -n 's/.*nchookd.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$line")
case ${score#* } in
OK | SAFE | PERFECT) ok "systemd-analyze security nchookd.service: $score (what counts: $work/security.txt)" ;;
*) fail "systemd-analyze security nchookd.service: '${score:-$line}', want OK or better:" && sed 's/^/    /' <<<"$sec" | grep -E '✗|Overall' >&2 ;;
esac

# ---- the pre-boot hook, served by the sandboxed daemon ----
dom=$idir/instance-libvirt.xml
before=$(cat "$R$dom")
t0=$(date +%s%N)
if out=$(ct runuser -u eucalyptus -- /etc/eucalyptus/nc-hooks/nchookd euca-nc-pre-boot /var/lib/eucalyptus "$idir" 2>&1); then
	ms=$((($(date +%s%N) - t0) / 1000000))
	after=$(cat "$R$dom")
	if [ "$before" = "$after" ]; then
		fail "pre-boot: the domain XML is unchanged"
	elif ! grep -q 'ks=http://10.0.0.1/ks.cfg' <<<"$after"; then
		fail "pre-boot: the rewritten domain has no ks=http://10.0.0.1/ks.cfg: $(grep -A1 '<cmdline' <<<"$after")"
	fi
	[ -z "$out" ] || fail "pre-boot: the hook said: $out"
	o=$(ct stat -c %U "$dom")
	[ "$o" = eucalyptus ] || fail "pre-boot: the domain XML's owner changed to $o"
	# Served by the daemon, not the hook's own fallback: the daemon follows it.
	if s=$(ct nchookd status "$id" 2>&1); then
		ok "pre-boot hook as eucalyptus ($ms ms): the daemon rewrote $id's domain; nchookd status: $(grep -m1 '^cmdline' <<<"$s" | tr -s ' ')"
	else
		fail "pre-boot: nchookd status $id: $s (the hook rewrote by itself?)"
	fi
	ct journalctl -b --no-pager -o cat -u nchookd.service | grep -q "$id" || fail "pre-boot: the unit's journal does not name $id"
else
	fail "pre-boot hook exited non-zero: $out"
	dump
fi

# ---- reload, restart, watchdog ----
reloads() { ct journalctl -b --no-pager -o cat -u nchookd.service | grep -c 'config reloaded' || true; }
wait_reloads() { # N: true once the daemon has logged N reloads (5 s at most)
	for _ in $(seq 50); do
		[ "$(reloads)" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
ct sh -c 'echo "# edited" >>/etc/nchookd/nchookd.toml'
wait_reloads 1 || fail "a config edit was not reloaded"
if ct systemctl reload nchookd.service; then
	wait_reloads 2 || fail "systemctl reload: the daemon logged no reload"
	[ "$(prop MainPID)" = "$pid" ] && [ "$(prop ActiveState)" = active ] ||
		fail "systemctl reload: MainPID $(prop MainPID) (was $pid), $(prop ActiveState)"
	ok "config reloaded by the running daemon on a file edit and on systemctl reload (same process)"
else
	fail "systemctl reload"
	dump
fi

# Restart on the host's libvirtd (its socket bound into the container):
# the sandboxed daemon reaches libvirtd over AF_UNIX. The driver it asks
# libvirtd for is libvirt's test driver (test+unix://), not QEMU: a daemon
# here must not follow the installs of the tests that run beside this one
# on the host's libvirtd.
luri="test+unix:///default?socket=/run/host-libvirt/libvirt-sock"
if [ -n "$host_libvirt" ]; then
	ct sed -i "s|^uri = \"qemu:///system\"\$|uri = \"$luri\"|" /etc/nchookd/nchookd.toml
	ct grep -qxF "uri = \"$luri\"" /etc/nchookd/nchookd.toml ||
		fail "the packaged config has no uri = \"qemu:///system\" line to point at the host's libvirtd"
fi

# (the container's /run is its own tmpfs: written from inside)
ct sh -c 'mkdir -p /run/systemd/system/nchookd.service.d && printf "[Service]\nWatchdogSec=2s\n" >/run/systemd/system/nchookd.service.d/watchdog.conf'
ct systemctl daemon-reload
t0=$(date +%s)
if ct systemctl restart nchookd.service; then
	pid2=$(prop MainPID)
	[ "$(prop WatchdogUSec)" = 2s ] || fail "restart: WatchdogUSec is $(prop WatchdogUSec), want 2s (the drop-in)"
	[ "$pid2" != "$pid" ] || fail "restart: same MainPID $pid"
	sleep 5
	[ "$(prop MainPID)" = "$pid2" ] && [ "$(prop NRestarts)" = 0 ] && [ "$(prop ActiveState)" = active ] ||
		fail "WatchdogSec=2s: after 5 s MainPID $(prop MainPID) (was $pid2), NRestarts $(prop NRestarts), $(prop ActiveState)"
	ct nchookd status "$id" >/dev/null 2>&1 || fail "restart: the daemon forgot $id"
	lv=$(libvirt_state)
	if [ -n "$host_libvirt" ]; then
		[ "$lv" = connected ] || fail "restart: libvirt $lv with $luri (the host's libvirtd)"
	fi
	ok "systemctl restart ($(($(date +%s) - t0 - 5)) s, libvirt $lv); with WatchdogSec=2s still the same daemon 5 s later; $id still known"
else
	fail "systemctl restart"
	dump
fi
ct rm -r /run/systemd/system/nchookd.service.d
ct systemctl daemon-reload

errs=$(journal_err || true)
[ -z "$errs" ] || fail "errors in the unit's journal: $errs"

# ---- upgrade while the daemon runs ----
# A newer .deb of the same contents (version +.N), as test-packages.sh
# makes it; dpkg runs the postinst under the container's systemd.
next_version() { # N: the package's version +.N
	local v
	v=$(dpkg-deb -f "$deb_n" Version)
	echo "${v%-1}.$1"
}
upgrade() { # N: dpkg -i of version +.N; prints dpkg's output
	local v
	v=$(next_version "$1")
	rm -rf "$work/next" && mkdir -p "$work/next"
	PKG_VERSION=$v PKG_ARCH=$(dpkg --print-architecture) build/nfpm package --config packaging/nfpm/nchookd.yaml \
		--packager deb --target "$work/next/" >/dev/null
	cp "$work/next/"nchookd_*.deb "$R/root/next.deb"
	ct dpkg -i /root/next.deb 2>&1 || echo "dpkg -i exited $?"
	rm -f "$R/root/next.deb"
}
# (nchookd status reads the config for the socket: with a file it refuses,
# a copy without the refused line)
serving() { ct nchookd status --config "${1:-/etc/nchookd/nchookd.toml}" "$id" >/dev/null 2>&1; }
t0=$(date +%s)
pid=$(prop MainPID)
upgraded_to=$(next_version 1)
out=$(upgrade 1)
pid2=$(prop MainPID)
if [ "$(prop ActiveState)" != active ] || [ "$pid2" = "$pid" ] || [ "$pid2" = 0 ]; then
	fail "upgrade, config accepted: $(prop ActiveState), MainPID $pid2 (was $pid): want active and restarted"
	printf '%s\n' "$out" | sed 's/^/    /' >&2
	dump
elif ! serving; then
	fail "upgrade, config accepted: the restarted daemon does not serve (or forgot $id)"
elif [ "$(ct dpkg-query -W -f '${Version}' nchookd)" != "$upgraded_to-1" ]; then
	fail "upgrade: nchookd $(ct dpkg-query -W -f '${Version}' nchookd) installed, want $upgraded_to-1"
elif grep -q '^nchookd: ' <<<"$out"; then
	fail "upgrade, config accepted: said $(grep '^nchookd: ' <<<"$out")"
elif ! ct grep -qx '# edited' /etc/nchookd/nchookd.toml; then
	fail "upgrade: the edited config was replaced"
else
	ok "upgrade to $upgraded_to while running: restarted (MainPID $pid → $pid2), active, serving, $id known, edited config kept ($(($(date +%s) - t0)) s)"
fi
# An edit the new version refuses (the running daemon refused it at its
# reload and keeps the previous configuration): no restart.
ct sh -c 'echo "no_such_key = 1" >>/etc/nchookd/nchookd.toml'
sleep 0.5
pid=$(prop MainPID)
upgraded_to=$(next_version 2)
out=$(upgrade 2)
said=$(grep '^nchookd: ' <<<"$out" || true)
if [ "$(prop ActiveState)" != active ] || [ "$(prop MainPID)" != "$pid" ]; then
	fail "upgrade, config refused: $(prop ActiveState), MainPID $(prop MainPID) (was $pid): want the old daemon running"
	dump
elif ! ct sh -c 'grep -v "^no_such_key" /etc/nchookd/nchookd.toml >/run/nchookd-ok.toml' || ! serving /run/nchookd-ok.toml; then
	fail "upgrade, config refused: the old daemon does not serve"
elif [ "$(grep -c . <<<"$said")" -ne 1 ] || ! grep -q 'not restarted.*no_such_key' <<<"$said"; then
	fail "upgrade, config refused: want one line saying why the daemon was not restarted, got: $out"
else
	ok "upgrade to $upgraded_to with a config it refuses: the old daemon (MainPID $pid) keeps running and serving; said: $said"
fi
ct sed -i '/^no_such_key/d' /etc/nchookd/nchookd.toml
ct rm -f /run/nchookd-ok.toml

# ---- stop ----
if ct systemctl stop nchookd.service nchookd.socket; then
	r=$(prop Result) code=$(prop ExecMainStatus)
	[ "$r" = success ] && [ "$code" = 0 ] || fail "stop: Result=$r ExecMainStatus=$code"
	! ct test -e /run/nchookd/nchookd.sock || fail "stop: the socket is still there"
	ok "systemctl stop: $(prop ActiveState), Result=$r, exit $code, socket removed"
else
	fail "systemctl stop"
	dump
fi
ct journalctl -b --no-pager -u nchookd.service -u nchookd.socket >"$work/nchookd-journal.txt" || true
[ "$fails" -eq 0 ] || tail -40 "$work/nchookd-journal.txt" >&2

# ---- power off ----
# (what systemctl poweroff does, without first asking logind over D-Bus,
# which this root does not have)
ct systemctl start --no-block --job-mode=replace-irreversibly poweroff.target || true
rc=0
timeout 30 tail --pid="$nspawn_pid" -f /dev/null || rc=$?
if kill -0 "$nspawn_pid" 2>/dev/null; then
	fail "the container did not power off in 30 s"
else
	wait "$nspawn_pid" || rc=$?
	[ "$rc" -eq 0 ] || fail "systemd-nspawn exited $rc: $(tail -5 "$work/nspawn.log")"
	nspawn_pid=
fi

echo "test-systemd: $(($(date +%s) - start)) s, $fails failure(s)" >&2
[ "$fails" -eq 0 ]
