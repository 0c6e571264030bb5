#!/usr/bin/env bash
# Load benchmark on loopback: the server pinned to core 0, wrk pinned to core 1, each run bounded in time.
# Measures a bare axum endpoint (the ceiling), pending polls of /token and /bc-authorize on SQLite.
# Usage: bench/run.sh   (make bench builds first). Env: DURATION (default 10s), CONNECTIONS (default 32).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-10s}
connections=${CONNECTIONS:-32}
port=3900
bin=target/release/countersign
work=$(mktemp -d)
results=bench/results
mkdir -p "$results"
out="$results/$(date -u +%Y%m%dT%H%M%SZ).txt"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

cargo build --locked --release -p server --example bench_hello >/dev/null 2>&1
hello=target/release/examples/bench_hello

wait_for() { for _ in $(seq 1 100); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1" >&2; exit 1; }

# wrk prints Requests/sec and, with --latency, the 99% line; keep both.
measure() {
  local name=$1; shift
  local log="$work/$name.log"
  taskset -c 1 wrk -t1 -c"$connections" -d"$duration" --latency "$@" > "$log"
  local rps p99 non2xx
  rps=$(awk '/Requests\/sec/ { print $2 }' "$log")
  p99=$(awk '$1 == "99%" { print $2 }' "$log")
  non2xx=$(awk '/Non-2xx/ { print $NF }' "$log")
  printf '%-26s %12s req/s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p99" "${non2xx:-0}" | tee -a "$out"
  echo "$rps" > "$work/$name.rps"
}

echo "countersign bench: wrk -t1 -c$connections -d$duration, server on core 0, wrk on core 1 ($(nproc) cores)" | tee "$out"

taskset -c 0 "$hello" "127.0.0.1:$((port + 1))" & pids+=($!)
wait_for "http://127.0.0.1:$((port + 1))/hello"
measure "bare axum hello" "http://127.0.0.1:$((port + 1))/hello"
kill "${pids[-1]}"

export DATABASE_URL="sqlite://$work/countersign.db"
# Limits off and interval 0: every poll is answered authorization_pending, the pure pending-poll path.
export COUNTERSIGN_MAX_PENDING_PER_APPROVER=0 COUNTERSIGN_MAX_REQUESTS_PER_MINUTE=0 COUNTERSIGN_POLL_INTERVAL=0
export COUNTERSIGN_REQUEST_EXPIRY=1800 RUST_LOG=warn
$bin approver add --email bench@example.com --name Bench >/dev/null
creds=$($bin client create --name bench --delivery poll --json)
id=$(echo "$creds" | sed -E 's/.*"client_id":"([^"]+)".*/\1/')
secret=$(echo "$creds" | sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
export AUTH=$(printf '%s:%s' "$id" "$secret" | base64 -w0)

taskset -c 0 $bin serve --addr "127.0.0.1:$port" --public-url "http://127.0.0.1:$port" & pids+=($!)
wait_for "http://127.0.0.1:$port/.well-known/openid-configuration"

details='[{"type":"agent_action","action":"Refund $1.00","target":"order 1","consequence":"money leaves"}]'
form="scope=openid&login_hint=bench%40example.com&authorization_details=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$details")"
auth_req_id=$(curl -sf -u "$id:$secret" -d "$form" "http://127.0.0.1:$port/bc-authorize" | sed -E 's/.*"auth_req_id":"([^"]+)".*/\1/')

BODY="grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=$auth_req_id" \
  measure "pending poll (/token)" -s bench/post.lua "http://127.0.0.1:$port/token"
BODY="$form" measure "/bc-authorize" -s bench/post.lua "http://127.0.0.1:$port/bc-authorize"

ceiling=$(cat "$work/bare axum hello.rps")
for name in "pending poll (/token)" "/bc-authorize"; do
  awk -v r="$(cat "$work/$name.rps")" -v c="$ceiling" -v n="$name" 'BEGIN { printf "%-26s %5.1f %% of the bare endpoint\n", n, 100 * r / c }' | tee -a "$out"
done
echo "results: $out"
