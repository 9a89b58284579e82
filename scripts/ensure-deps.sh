#!/usr/bin/env bash
# Installs what the tests and the sandbox need and a fresh machine of this kind lacks:
# Debian packages (Redis, the distribution registry, Chromium), npm packages, Python
# test tools, and the test control plane binaries (built once, cached outside the repo).
# Safe to run again: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
[ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
[ -x /usr/bin/docker-registry ] || need_apt+=(docker-registry)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v curl >/dev/null || need_apt+=(curl)
python3 -c 'import venv' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "rollhook: missing Debian packages: ${need_apt[*]}; run: sudo apt-get install -y ${need_apt[*]}" >&2
    exit 1
  fi
  echo "rollhook: installing ${need_apt[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Debian's packages may start their own services on the default ports; tests use their own.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "rollhook: npm ci" >&2
  npm ci --no-audit --no-fund >&2
fi

# The control plane binaries (first run on a machine: 10-20 min).
bash test/cluster/build.sh >/dev/null
