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

if ! command -v go >/dev/null 2>&1; then
	echo "install.sh: Go is not installed or not on PATH; install Go 1.26 or newer from https://go.dev/dl/ and run ./install.sh again" >&2
	exit 1
fi

cd "$(dirname "$0")"
version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "Building $name $version"
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version -X main.commit=$commit" -o "$tmp/$name" .

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
