#!/bin/sh
# nchookd postinst (.deb "configure [OLD]") and %post (.rpm $1: 1 install, 2 upgrade).
# Enables nothing: the operator starts nchookd with systemctl when ready.
# An upgrade restarts a daemon that is running (try-restart) and leaves a
# stopped one stopped.
set -e
upgrade=
case "$1" in
configure) [ -z "$2" ] || upgrade=1 ;;
abort-upgrade | abort-remove | abort-deconfigure) upgrade=1 ;;
1) ;;
2) upgrade=1 ;;
*) exit 0 ;;
esac

# The socket's group (packaging/nchookd.sysusers).
if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers nchookd.conf
elif ! getent group nchookd >/dev/null; then
	groupadd --system nchookd
fi
# The cloud's hook user may talk to the daemon (hook.allowed_users checks it too).
for u in eucalyptus oneadmin; do
	if getent passwd "$u" >/dev/null && ! id -nG "$u" | tr ' ' '\n' | grep -qx nchookd; then
		usermod -a -G nchookd "$u"
	fi
done
# An OpenNebula frontend: the deploy wrapper goes in place (OpenNebula's
# script is diverted to deploy.one, never overwritten); an upgrade refreshes
# it. A failure here is reported and leaves OpenNebula's deploy as it was;
# it does not fail the package.
if [ -f /var/lib/one/remotes/vmm/kvm/deploy ]; then
	# rpm ($1 a number): a rename, never a dpkg diversion, even where
	# dpkg-divert exists.
	case "$1" in 1 | 2) NCHOOKD_ONE_NO_DPKG=1 && export NCHOOKD_ONE_NO_DPKG ;; esac
	/usr/lib/nchookd/nchookd-one-setup enable ||
		echo "nchookd: OpenNebula deploy wrapper not enabled; fix the above and run /usr/lib/nchookd/nchookd-one-setup enable" >&2
fi
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create nchookd.conf || true
fi
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
	if [ -n "$upgrade" ]; then
		# try-restart: only units that are running; the socket keeps
		# listening, so the hook is not refused while the daemon restarts.
		systemctl try-restart nchookd.service >/dev/null || true
	fi
fi
exit 0
