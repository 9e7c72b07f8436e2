#!/bin/sh
case "$1" in euca-nc-pre-boot|euca-nc-pre-clean) exec /usr/lib/nchookd/nchookd-euca-hook "$@";; esac
exit 0
