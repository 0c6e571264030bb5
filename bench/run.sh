#!/usr/bin/env bash
# Load benchmark on loopback: servers pinned to core 0, wrk pinned to core 1, every run bounded in time.
# Measures a bare axum endpoint (the ceiling), pending polls of /token and /bc-authorize on SQLite, in
# alternating rounds (so drift of the machine hits all three alike) and reports the median of each.
# Usage: bench/run.sh (make bench builds first). Env: DURATION per run (5s), ROUNDS (3), CONNECTIONS (32).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION:-5s}
rounds=${ROUNDS:-3}
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

# One wrk run; appends "rps p99 non2xx" to the endpoint's file.
run() {
  local slug=$1; shift
  taskset -c 1 wrk -t1 -c"$connections" -d"$duration" --latency "$@" > "$work/last.log"
  awk '/Requests\/sec/ { rps = $2 } $1 == "99%" { p99 = $2 } /Non-2xx/ { bad = $NF }
       END { print rps, p99, (bad == "" ? 0 : bad) }' "$work/last.log" >> "$work/$slug"
}

echo "countersign bench: wrk -t1 -c$connections -d$duration x $rounds rounds, servers on core 0, wrk on core 1" | tee "$out"

export DATABASE_URL="sqlite://$work/countersign.db" RUST_LOG=warn
# Limits off and interval 0: every poll is answered authorization_pending, the pure pending-poll path.
export COUNTERSIGN_MAX_PENDING_PER_APPROVER=0 COUNTERSIGN_MAX_REQUESTS_PER_MINUTE=0 COUNTERSIGN_POLL_INTERVAL=0
export COUNTERSIGN_REQUEST_EXPIRY=1800
$bin approver add --email bench@example.com --name Bench >/dev/null
creds=$($bin client create --name bench --delivery poll --json)
id=$(echo "$creds" | sed -E 's/.*"client_id":"([^"]+)".*/\1/')
secret=$(echo "$creds" | sed -E 's/.*"client_secret":"([^"]+)".*/\1/')
export AUTH=$(printf '%s:%s' "$id" "$secret" | base64 -w0)

taskset -c 0 "$hello" "127.0.0.1:$((port + 1))" & pids+=($!)
taskset -c 0 $bin serve --addr "127.0.0.1:$port" --public-url "http://localhost:$port" & pids+=($!)
wait_for "http://127.0.0.1:$((port + 1))/hello"
wait_for "http://127.0.0.1:$port/.well-known/openid-configuration"

details='[{"type":"agent_action","action":"Refund $1.00","target":"order 1","consequence":"money leaves"}]'
form="scope=openid&login_hint=bench%40example.com&authorization_details=$(python3 -c 'import sys,urllib.parse;print(urllib.parse.quote(sys.argv[1]))' "$details")"
auth_req_id=$(curl -sf -u "$id:$secret" -d "$form" "http://127.0.0.1:$port/bc-authorize" | sed -E 's/.*"auth_req_id":"([^"]+)".*/\1/')
poll_body="grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=$auth_req_id"

for round in $(seq 1 "$rounds"); do
  run hello "http://127.0.0.1:$((port + 1))/hello"
  BODY="$poll_body" run poll -s bench/post.lua "http://127.0.0.1:$port/token"
  BODY="$form" run bc -s bench/post.lua "http://127.0.0.1:$port/bc-authorize"
done

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ceiling=$(cut -d' ' -f1 "$work/hello" | median)
for entry in "hello:bare axum hello" "poll:pending poll (/token)" "bc:/bc-authorize"; do
  slug=${entry%%:*} name=${entry#*:}
  rps=$(cut -d' ' -f1 "$work/$slug" | median)
  p99=$(cut -d' ' -f2 "$work/$slug" | tr '\n' ' ')
  awk -v n="$name" -v r="$rps" -v c="$ceiling" -v p="$p99" -v all="$(cut -d' ' -f1 "$work/$slug" | tr '\n' ' ')" \
    'BEGIN { printf "%-24s median %9.0f req/s  %5.1f %% of bare   (runs: %s; p99: %s)\n", n, r, 100 * r / c, all, p }' | tee -a "$out"
done
echo "answers: polls are 400 authorization_pending by design; /bc-authorize non-2xx: $(cut -d' ' -f3 "$work/bc" | tr '\n' ' ')" | tee -a "$out"
echo "results: $out"
