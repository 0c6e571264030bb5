#!/usr/bin/env bash
# The API contract: schemathesis (PyPI) reads /openapi.json from a release server on loopback and sends
# it generated requests, valid and invalid, for every operation. The run fails on any 5xx, on a
# status, content type, header or body the description does not allow, on invalid input accepted, and
# on an endpoint that ignores missing authentication.
# Usage: scripts/api-contract.sh [MAX_EXAMPLES] (default 30; `make contract` runs longer). Writes
# bench/results/contract-*.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-30}
bin=${COUNTERSIGN_BIN:-target/release/countersign}
st=tools/contract/.venv/bin/st
port=${CONTRACT_PORT:-3190}
origin="http://127.0.0.1:$port"
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
export DATABASE_URL="sqlite://$work/contract.db" COUNTERSIGN_KEY_FILE="$work/key" RUST_LOG=error
export COUNTERSIGN_CHECKPOINT_DIR="$work/checkpoints"
# An agent to authenticate as, and an approver it may ask.
credentials=$($bin client create --name "Contract agent" --delivery poll --json --database-url "$DATABASE_URL")
client_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])' <<<"$credentials")
client_secret=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])' <<<"$credentials")
$bin approver add --email jane@example.com --name Jane --database-url "$DATABASE_URL" >/dev/null
# The limit on refused requests per address is off: nearly every generated request is refused, and
# answered 429 after the first minute's share they would test nothing else (abuse.rs and
# limits.spec.ts test it).
COUNTERSIGN_FAILURES_PER_MINUTE=0 LEPTOS_SITE_ADDR="127.0.0.1:$port" COUNTERSIGN_PUBLIC_URL="http://localhost:$port" \
  LEPTOS_SITE_ROOT=target/site $bin serve >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fsS "$origin/openapi.json" >/dev/null 2>&1 && break
  sleep 0.2
done
mkdir -p bench/results
out="bench/results/contract-$(date -u +%Y%m%dT%H%M%SZ).txt"
# positive_data_acceptance is left out: the description can say what shape a login_hint has, not
# that it names an approver of this server, so most generated "valid" requests are rightly refused.
set +e
"$st" run "$origin/openapi.json" --url "$origin" \
  --auth "$client_id:$client_secret" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples "$examples" --seed 20261130 --workers 2 \
  --generation-database none --no-color 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
if grep -qE 'panicked|ERROR' "$work/server.log"; then
  echo "the server logged errors during the run:" >&2
  grep -E 'panicked|ERROR' "$work/server.log" | head -20 >&2
  status=1
fi
echo "written to $out"
exit "$status"
