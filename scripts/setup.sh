#!/usr/bin/env bash
# Installs what building, testing or benchmarking Countersign needs and is missing. Idempotent: each
# step checks first. Usage: scripts/setup.sh build|test|bench
set -euo pipefail
cd "$(dirname "$0")/.."
purpose=${1:-build}

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    say "need root to run: $*"; exit 1; fi
}

apt_updated=
apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then say "please install: ${missing[*]}"; exit 1; fi
  say "installing ${missing[*]}"
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Building: a C toolchain and OpenSSL for webauthn-rs/josekit; Node.js for the build tools below;
# Zopfli for the bundle's gzip copies.
apt_install pkg-config libssl-dev build-essential zopfli
command -v npm >/dev/null || apt_install nodejs npm

# wasm-opt comes from the npm registry's binaryen, pinned in tools/package.json. Debian bookworm's
# binaryen (108) must never be used: it rewrites wasm-bindgen's externref table export so that the
# bundle throws at hydration. The Makefile calls tools/node_modules/.bin/wasm-opt by path, never PATH.
if [ ! -x tools/node_modules/.bin/wasm-opt ] || [ tools/package-lock.json -nt tools/node_modules/.package-lock.json ]; then
  say "installing the build tools (binaryen's wasm-opt)"
  (cd tools && npm ci --no-audit --no-fund)
fi

command -v cargo >/dev/null || { say "Rust is missing: install it with rustup (https://rustup.rs)"; exit 1; }
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly. Its own lock file pins a crate
# the registry no longer serves, so it is installed without --locked.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$want" != "$have" ]; then
  say "installing wasm-bindgen-cli $want"
  cargo install wasm-bindgen-cli --version "$want"
fi

# Chromium and Playwright, for the browser tests and the first-visit benchmark.
browser_packages() {
  apt_install chromium
  if [ ! -d end2end/node_modules ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing the end-to-end test packages"
    (cd end2end && npm ci --no-audit --no-fund)
  fi
}

# schemathesis (PyPI), pinned in tools/contract/requirements.txt, for the API contract test.
contract_tools() {
  apt_install curl
  if [ ! -x tools/contract/.venv/bin/st ] || [ tools/contract/requirements.txt -nt tools/contract/.venv/.installed ]; then
    say "installing schemathesis (the API contract test)"
    python3 -m venv tools/contract/.venv 2>/dev/null || { apt_install python3-venv; python3 -m venv tools/contract/.venv; }
    tools/contract/.venv/bin/pip install -q -r tools/contract/requirements.txt
    touch tools/contract/.venv/.installed
  fi
}

case "$purpose" in
  test)
    apt_install postgresql-client
    browser_packages
    contract_tools
    scripts/ensure-postgres.sh
    ;;
  bench)
    apt_install wrk util-linux curl python3
    browser_packages
    ;;
esac
