#!/bin/sh
# nchookd postrm (.deb "remove|purge|upgrade|…") and %postun (.rpm $1: 0
# erase, 1 upgrade). Purge (.deb) removes the state, the runtime directory
# and the socket's group; rpm has no purge: an erase removes the state
# directory only when it holds no install records, and leaves the group,
# as rpm packages do.
set -e
case "$1" in
purge)
	rm -rf /var/lib/nchookd /run/nchookd
	rmdir /etc/nchookd 2>/dev/null || true
	if getent group nchookd >/dev/null; then
		groupdel nchookd || true
	fi
	;;
remove)
	rm -rf /run/nchookd
	;;
0)
	rm -rf /run/nchookd
	rmdir /var/lib/nchookd/instances /var/lib/nchookd 2>/dev/null || true
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
exit 0
