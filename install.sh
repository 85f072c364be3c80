#!/bin/sh
# Build docker-credential-gcp from this checkout, install it and point docker
# at it. Usage: ./install.sh [--prefix DIR] [--no-configure] [-- configure-docker flags]
set -eu

name=docker-credential-gcp
configure=1
prefix=${PREFIX:-}

usage() {
	cat <<USAGE
Usage: ./install.sh [--prefix DIR] [--no-configure] [-- CONFIGURE-DOCKER-FLAGS]

Builds $name with Go, installs it to PREFIX/bin and runs
'$name configure-docker' so docker uses it for gcr.io and *.pkg.dev.

  --prefix DIR     install to DIR/bin (default: \$PREFIX, else /usr/local as
                   root, else ~/.local)
  --no-configure   do not touch ~/.docker/config.json
  -- FLAGS         pass FLAGS to configure-docker (e.g. -- --key-file key.json)
USAGE
}

while [ $# -gt 0 ]; do
	case $1 in
	--prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 1; }; prefix=$2; shift 2 ;;
	--prefix=*) prefix=${1#--prefix=}; shift ;;
	--no-configure) configure=0; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	*) echo "install.sh: unknown option $1 (see ./install.sh --help)" >&2; exit 1 ;;
	esac
done

if [ -z "$prefix" ]; then
	if [ "$(id -u)" = 0 ]; then prefix=/usr/local; else prefix=$HOME/.local; fi
fi
bindir=$prefix/bin

cd "$(dirname "$0")"

# The Go this needs is go.mod's "go" line: the lowest the dependencies allow.
need=$(sed -n 's/^go \([0-9][0-9a-z.]*\)[[:space:]]*$/\1/p' go.mod)

if ! command -v go >/dev/null 2>&1; then
	echo "install.sh: Go is not installed or not on PATH; install Go $need or newer from https://go.dev/dl/ and run ./install.sh again" >&2
	exit 1
fi

# at_least HAVE WANT: whether Go version HAVE (1.26.3, 1.27rc1) is WANT or
# newer. A missing patch number (a release candidate) sorts before .0.
at_least() {
	awk -v have="$1" -v want="$2" 'BEGIN {
		split(have, h, "."); split(want, w, ".")
		if (h[3] == "") h[3] = -1; if (w[3] == "") w[3] = -1
		for (i = 1; i <= 3; i++) {
			if (h[i] + 0 > w[i] + 0) exit 0
			if (h[i] + 0 < w[i] + 0) exit 1
		}
		exit 0
	}'
}

# Check the Go that is installed, not one go would download: unless the user
# chose a GOTOOLCHAIN, the build runs with GOTOOLCHAIN=local, so it never
# fetches a toolchain behind the user's back.
have=$(cd / && GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed -n '1s/^go\([0-9][0-9a-z.]*\).*/\1/p')
if [ -n "$have" ] && ! at_least "$have" "$need"; then
	if [ -z "${GOTOOLCHAIN:-}" ] || [ "$GOTOOLCHAIN" = local ]; then
		echo "install.sh: this needs Go $need or newer (go.mod), but the go on PATH is Go $have. Install a newer Go from https://go.dev/dl/, or let go download Go $need for this build: GOTOOLCHAIN=go$need ./install.sh" >&2
		exit 1
	fi
	echo "Go $have is older than the Go $need this needs; GOTOOLCHAIN=$GOTOOLCHAIN lets go fetch a newer one"
fi
export GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

version=$(./version.sh)
commit=$(git rev-parse HEAD 2>/dev/null | cut -c1-12)
commit=${commit:-unknown}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "Building $name $version"
CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$version -X main.commit=$commit" -o "$tmp/$name" .

mkdir -p "$bindir"
# Copy then rename, so a running docker never sees a half-written binary.
cp "$tmp/$name" "$bindir/.$name.new"
chmod 0755 "$bindir/.$name.new"
mv -f "$bindir/.$name.new" "$bindir/$name"
echo "Installed $bindir/$name"

case ":$PATH:" in
*":$bindir:"*) ;;
*) echo "Note: $bindir is not on your PATH; docker will not find $name until it is. Add this to your shell profile:
  export PATH=\"$bindir:\$PATH\"" ;;
esac

if [ "$configure" = 1 ]; then
	PATH=$bindir:$PATH "$bindir/$name" configure-docker "$@"
fi
