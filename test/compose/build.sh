#!/usr/bin/env bash
# Builds compose-config (compose-go, the loader behind `docker compose config`) into the
# cache outside the repository, keyed by the compose-go version; later runs return at once.
# Prints the binary's path on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "github.com/compose-spec/compose-go/v2" { print $2 } $2 == "github.com/compose-spec/compose-go/v2" { print $3 }' "$here/go.mod")
[ -n "$version" ] || { echo "compose-config: no compose-go version in $here/go.mod" >&2; exit 1; }
cache_root=${ROLLHOOK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rollhook}
bin="$cache_root/compose-config-$version"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
command -v go >/dev/null 2>&1 || { echo "compose-config: Go (1.26 or newer) is needed to build it" >&2; exit 1; }
mkdir -p "$cache_root"
(cd "$here" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath "-ldflags=-s -w" -o "$bin.tmp.$$" .)
mv "$bin.tmp.$$" "$bin"
echo "$bin"
