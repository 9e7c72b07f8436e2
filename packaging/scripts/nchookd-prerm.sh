#!/bin/sh
# nchookd prerm (.deb "remove|upgrade|deconfigure|failed-upgrade") and %preun
# (.rpm $1: 0 erase, 1 upgrade). On removal the hook goes first, before the
# daemon stops and the binaries go: no launch is rewritten by a half-removed
# product. An upgrade changes nothing here (postinst try-restarts).
set -e
case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac
rm -f /etc/eucalyptus/nc-hooks/nchookd
# OpenNebula frontend: OpenNebula's deploy back in place (the diversion
# removed). Hosts keep the synced wrapper until the next onehost sync; it
# runs deploy.one directly once nchookd-one-deploy is gone.
if [ -x /usr/lib/nchookd/nchookd-one-setup ] && [ -d /var/lib/one/remotes/vmm/kvm ]; then
	# rpm: a rename, never a dpkg diversion (what postinst made).
	case "$1" in 0) NCHOOKD_ONE_NO_DPKG=1 && export NCHOOKD_ONE_NO_DPKG ;; esac
	/usr/lib/nchookd/nchookd-one-setup disable ||
		echo "nchookd: OpenNebula deploy wrapper not taken out; see above" >&2
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload disable nchookd.service nchookd.socket >/dev/null 2>&1 || true
	if [ -d /run/systemd/system ]; then
		systemctl stop nchookd.service nchookd.socket >/dev/null 2>&1 || true
	fi
fi
exit 0
