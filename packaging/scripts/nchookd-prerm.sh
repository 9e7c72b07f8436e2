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
# OpenNebula deploy wrapper: remove it here as well once it is packaged
# (packaging/nfpm/nchookd.yaml).
if command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload disable nchookd.service nchookd.socket >/dev/null 2>&1 || true
	if [ -d /run/systemd/system ]; then
		systemctl stop nchookd.service nchookd.socket >/dev/null 2>&1 || true
	fi
fi
exit 0
