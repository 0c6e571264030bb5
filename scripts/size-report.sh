#!/usr/bin/env bash
# The browser bundle's size as a phone downloads it: raw, gzip and brotli bytes of the wasm, its JS
# glue and the stylesheet, from the precompressed copies the site build made (target/site/pkg).
# With --check, fails when the wasm's gzip size is over the budget (BENCHMARKS.md "Bundle size").
# Usage: scripts/size-report.sh [--check]   (after `make build` or `make site-release`)
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${WASM_GZIP_BUDGET:-360000} # 360 kB (of 1000 bytes)
pkg=target/site/pkg

size() { stat -c %s "$1"; }
total_gz=0
printf '%-36s %10s %10s %10s\n' file raw gzip brotli
for f in "$pkg"/countersign.*.wasm "$pkg"/countersign.*.js "$pkg"/countersign.*.css; do
  [ -f "$f" ] || { echo "no bundle in $pkg: run make build first" >&2; exit 1; }
  printf '%-36s %10d %10d %10d\n' "$(basename "$f")" "$(size "$f")" "$(size "$f.gz")" "$(size "$f.br")"
  total_gz=$((total_gz + $(size "$f.gz")))
done
wasm=$(ls "$pkg"/countersign.*.wasm)
wasm_gz=$(size "$wasm.gz")
printf 'wasm gzip: %d bytes (budget %d); bundle gzip: %d bytes\n' "$wasm_gz" "$budget" "$total_gz"
if [ "${1:-}" = "--check" ] && [ "$wasm_gz" -gt "$budget" ]; then
  echo "the wasm bundle is over its size budget: $wasm_gz > $budget bytes gzip" >&2
  exit 1
fi
