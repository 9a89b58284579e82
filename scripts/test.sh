#!/usr/bin/env bash
# The test command (`npm test`): installs what is missing, then typecheck, lint and every
# test against real Redis, registry and Kubernetes control plane.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
export PATH="$PWD/node_modules/.bin:$PATH"   # node 24 from the node@24 dev dependency
echo "node $(node --version)"
npx tsc --noEmit
npx eslint .
npx vitest run "$@"
