#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kube-controller-manager) from the
# Go module proxy into a cache outside the repository, keyed by version. Only the first
# run on a machine pays for the build (10-20 min on 2 cores); later runs return at once.
# Prints the bin directory on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
KUBE_VERSION=v1.36.3
ETCD_VERSION=v3.6.8
cache_root=${ROLLHOOK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rollhook}
bin="$cache_root/control-plane-$KUBE_VERSION-etcd-$ETCD_VERSION"

if [ -x "$bin/etcd" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ]; then
  echo "$bin"; exit 0
fi
need_go="rollhook test control plane: Go 1.26 or newer is needed once, to build etcd, kube-apiserver and kube-controller-manager $KUBE_VERSION; install it from https://go.dev/dl/ (Debian 12's golang-go is 1.19, too old) and run again."
if ! command -v go >/dev/null 2>&1; then
  echo "$need_go" >&2
  exit 1
fi
# The wrapper modules say `go 1.26.0`; with GOTOOLCHAIN=local an older Go fails with a cryptic error.
go_version=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
if ! printf '%s\n%s\n' 1.26 "$go_version" | sort -V -C; then
  echo "$need_go (found go $go_version)" >&2
  exit 1
fi
mkdir -p "$bin"
# Two test runs on a cold machine must not build into the same directory at once.
exec 9>"$bin.lock"
flock 9
if [ -x "$bin/etcd" ] && [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ]; then
  echo "$bin"; exit 0
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
flags=(-trimpath "-ldflags=-s -w")
start=$(date +%s)
build() { # dir, package, output
  local tmp="$bin/.$3.tmp"
  echo "building $3 ($2)…" >&2
  (cd "$here/$1" && go build "${flags[@]}" -o "$tmp" "$2")
  mv "$tmp" "$bin/$3"
}
[ -x "$bin/etcd" ] || build etcd go.etcd.io/etcd/server/v3 etcd
[ -x "$bin/kube-apiserver" ] || build kube k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver
[ -x "$bin/kube-controller-manager" ] || build kube k8s.io/kubernetes/cmd/kube-controller-manager kube-controller-manager
# kubectl renders the kustomize base (kubectl kustomize) and dry-runs it against the test cluster.
[ -x "$bin/kubectl" ] || build kube k8s.io/kubernetes/cmd/kubectl kubectl
echo "control plane built in $(( $(date +%s) - start ))s" >&2
echo "$bin"
