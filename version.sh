#!/bin/sh
# Print the version of this checkout, the one `version`, the packages and the
# image report, without a leading v:
#   HEAD tagged v1.2.3                -> 1.2.3
#   untagged, last release tag v1.2.3 -> 1.2.4-0.20261203083000-abcdef123456
#   untagged, no release tag yet      -> 0.0.0-20261203083000-abcdef123456
# the Go pseudo-version of the commit (UTC commit time, 12-digit hash), as Go
# itself stamps a build of the commit, with +dirty when the work tree has
# changes. No git or no commit: "dev" (the binary then reads its build info).
# With -e it prints the commit time in seconds instead (SOURCE_DATE_EPOCH).
set -eu
cd "$(dirname "$0")"

if ! git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	if [ "${1:-}" = -e ]; then echo 0; else echo dev; fi
	exit 0
fi
if [ "${1:-}" = -e ]; then
	git log -1 --format=%ct HEAD
	exit 0
fi

dirty=
[ -z "$(git status --porcelain 2>/dev/null)" ] || dirty=+dirty

tag=$(git tag --points-at HEAD --list 'v[0-9]*' | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$' | sort -V | tail -n 1 || true)
if [ -n "$tag" ]; then
	echo "${tag#v}$dirty"
	exit 0
fi

stamp=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)
hash=$(git rev-parse HEAD | cut -c1-12)
base=$(git tag --merged HEAD --list 'v[0-9]*' | grep -E '^v[0-9]+\.[0-9]+\.[0-9]+$' | sort -V | tail -n 1 || true)
if [ -z "$base" ]; then
	echo "0.0.0-$stamp-$hash$dirty"
	exit 0
fi
echo "$base" | awk -F. -v rest="-0.$stamp-$hash$dirty" '{ sub(/^v/, "", $1); printf "%s.%s.%d%s\n", $1, $2, $3 + 1, rest }'
