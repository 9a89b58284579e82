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
npx prettier --check . >/dev/null || { npx prettier --check . ; echo "prettier: run npm run format" >&2; exit 1; }
mkdir -p test-artifacts
rc=0
npx vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || rc=$?
# One plain closing line that any CI reads: "tests: N passed, N failed[, N skipped]".
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ""}`);
' || echo "tests: 0 passed, 1 failed"
exit "$rc"
