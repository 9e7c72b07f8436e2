#!/bin/sh
# nchookd postinst (.deb "configure [OLD]") and %post (.rpm $1: 1 install, 2 upgrade).
# Enables nothing: the operator starts nchookd with systemctl when ready.
# An upgrade restarts a daemon that is running only when the new nchookd
# accepts the configuration in place (nchookd check: the operator's edited
# file is kept by dpkg and rpm); otherwise the old daemon keeps running and
# one line says why. A stopped daemon stays stopped.
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
	if [ -n "$upgrade" ] && systemctl --quiet is-active nchookd.service; then
		# A restart into a configuration the new binary refuses would stop
		# the daemon (it refuses to start) and, behind it, every install
		# it follows: the running one stays until the file is fixed.
		if why=$(/usr/sbin/nchookd check 2>&1 >/dev/null); then
			# try-restart: the socket keeps listening, so the hook is not
			# refused while the daemon restarts.
			systemctl try-restart nchookd.service >/dev/null ||
				echo "nchookd: upgraded, but the restart failed; see journalctl -u nchookd" >&2
		else
			why=$(printf '%s\n' "$why" | grep -v ': ok, ' | head -n 1)
			echo "nchookd: upgraded but not restarted: the new version refuses /etc/nchookd/nchookd.toml (${why#nchookd check: }); the old daemon keeps running, but the new hooks read the same file and may refuse launches with kscloud directives: fix the file (nchookd check), then systemctl restart nchookd" >&2
		fi
	fi
fi
exit 0
