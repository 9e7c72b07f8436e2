#!/bin/sh
# The package version: the newest tag (v1.2.3 → 1.2.3), else
# 0.0.0+git<commit date>.<commit>, which sorts by date for dpkg and rpm.
cd "$(dirname "$0")/.." || exit 1
if t=$(git describe --tags --abbrev=0 2>/dev/null); then
	echo "${t#v}"
	exit 0
fi
git log -1 --format='0.0.0+git%cd.%h' --date=format-local:%Y%m%d%H%M%S 2>/dev/null || echo 0.0.0
