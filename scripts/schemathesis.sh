#!/usr/bin/env bash
# Property-based robustness test of the REST API: schemathesis (from PyPI, pinned) generates
# requests from the served OpenAPI document and checks every answer: no 5xx, status codes,
# content types, headers and bodies as documented, invalid input refused, no access without
# the token, 405 for methods the document does not list.
#
#   scripts/schemathesis.sh BASE_URL [extra schemathesis args]
#
# The bearer token comes from ROLLHOOK_TOKEN (kept off the command line). schemathesis lives
# in a venv outside the repo (~/.cache/rollhook/schemathesis-VERSION), created on first use.
# ROLLHOOK_SCHEMATHESIS_SEED picks the seed (default fixed, so CI runs are repeatable);
# ROLLHOOK_SCHEMATHESIS_EXAMPLES the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.32.5
BASE_URL="${1:?usage: scripts/schemathesis.sh BASE_URL [schemathesis args]}"
shift
: "${ROLLHOOK_TOKEN:?set ROLLHOOK_TOKEN to an API token with read, deploy and rollback on every target}"
CACHE="${ROLLHOOK_CACHE:-$HOME/.cache/rollhook}"
VENV="$CACHE/schemathesis-$VERSION"
mkdir -p "$CACHE"

if [ ! -x "$VENV/bin/schemathesis" ]; then
  # one installer at a time; a failed install leaves no venv behind
  exec 9>"$CACHE/schemathesis.lock"
  flock 9
  if [ ! -x "$VENV/bin/schemathesis" ]; then
    echo "schemathesis: installing $VERSION into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2 || { rm -rf "$VENV"; exit 1; }
  fi
  flock -u 9
fi

ARTIFACTS="${ROLLHOOK_ARTIFACTS:-test-artifacts}/schemathesis"
mkdir -p "$ARTIFACTS"

# The token reaches schemathesis through the environment (its config file reads it), never argv.
export ROLLHOOK_TOKEN
exec "$VENV/bin/schemathesis" --config-file test/schemathesis/schemathesis.toml run "$BASE_URL/api/v1/openapi.json" \
  --checks all --exclude-checks positive_data_acceptance \
  --seed "${ROLLHOOK_SCHEMATHESIS_SEED:-20261129}" \
  --max-examples "${ROLLHOOK_SCHEMATHESIS_EXAMPLES:-100}" \
  --report junit --report-dir "$ARTIFACTS" \
  "$@"
