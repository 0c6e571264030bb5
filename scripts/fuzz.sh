#!/usr/bin/env bash
# Runs every fuzz target (fuzz/) for a bounded time and records executions and findings in
# bench/results/fuzz-*.txt. cargo-fuzz needs nightly-only compiler flags: on the stable toolchain
# they are allowed with RUSTC_BOOTSTRAP=1 (this builds nothing but the fuzz targets that way).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] (default 60). A crash leaves its input in
# fuzz/artifacts/<target>/; turn it into a regression test (see server/src/fuzzing.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mkdir -p bench/results
out="bench/results/fuzz-$(date -u +%Y%m%dT%H%M%SZ).txt"
echo "fuzz run: $secs s per target, $(nproc) cores" | tee "$out"
status=0
for target in $(cd fuzz && cargo fuzz list); do
  log=$(mktemp)
  if (cd fuzz && cargo fuzz run "$target" -- -max_total_time="$secs" -rss_limit_mb=2048) >"$log" 2>&1; then
    result=ok
  else
    result="FOUND A CRASH (see fuzz/artifacts/$target)"
    status=1
  fi
  runs=$(grep -oE 'Done [0-9]+ runs' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
  printf '%-24s %12s executions  coverage %6s  %s\n' "$target" "$runs" "$cov" "$result" | tee -a "$out"
  [ "$result" = ok ] || tail -40 "$log" | tee -a "$out"
  rm -f "$log"
done
echo "written to $out"
exit "$status"
