#!/bin/sh
# nchookd postrm (.deb "remove|purge|upgrade|…") and %postun (.rpm $1: 0
# erase, 1 upgrade). Purge (.deb) removes what nchookd made: its install
# records (/var/lib/nchookd/instances), the runtime directory and the
# socket's group; /var/lib/nchookd itself only when nothing else is left in
# it: files an operator put there (the installer catalog's kernels and
# initrds, /var/lib/nchookd/installers/ in the shipped example) are never
# nchookd's to remove, and one line says they were kept. rpm has no purge:
# an erase removes the state directory only when it holds no install
# records, and leaves the group, as rpm packages do.
set -e
case "$1" in
purge)
	rm -rf /var/lib/nchookd/instances /run/nchookd
	if [ -d /var/lib/nchookd ] && ! rmdir /var/lib/nchookd 2>/dev/null; then
		echo "nchookd: purge kept /var/lib/nchookd: it holds files nchookd did not make (installer kernels and initrds?); remove it yourself when they are no longer needed" >&2
	fi
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
