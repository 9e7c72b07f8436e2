#!/bin/sh
# The package version: the newest version tag (v1.2.3 → 1.2.3; tags that
# are not versions, e.g. "rehearsal", are ignored: dpkg refuses a version
# that does not start with a digit), else 0.0.0+git<commit date>.<commit>,
# which sorts by date for dpkg and rpm.
cd "$(dirname "$0")/.." || exit 1
if t=$(git describe --tags --abbrev=0 --match 'v[0-9]*' --match '[0-9]*' 2>/dev/null); then
	echo "${t#v}"
	exit 0
fi
git log -1 --format='0.0.0+git%cd.%h' --date=format-local:%Y%m%d%H%M%S 2>/dev/null || echo 0.0.0
