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
if ! command -v go >/dev/null 2>&1; then
  echo "rollhook test control plane: Go (1.26 or newer) is needed to build etcd and kube-apiserver; install it (e.g. 'apt-get install golang' or from go.dev) and run again." >&2
  exit 1
fi
mkdir -p "$bin"
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
