#!/usr/bin/env bash
# `npm run sandbox [-- --config FILE]`: installs what is missing (Debian packages, npm
# packages, the test control plane), then runs rollhook and everything it talks to on
# loopback until Ctrl-C (scripts/sandbox.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"   # node 24 from the node@24 dev dependency
exec node scripts/sandbox.ts "$@"
