# Countersign's build, as cargo-leptos would do it, without downloading tools from outside the package
# registries: the wasm bundle (own target dir, so server builds never invalidate it) → wasm-bindgen →
# wasm-opt (Binaryen from npm, see tools/) → scripts/site.mjs (hashed names, precompressed copies) →
# target/site, then the server binary. `make test` runs the browser suite against exactly what
# `make run` serves: the release bundle and the release binary.
SITE        := target/site
PKG         := $(SITE)/pkg
WASM_TARGET := target/wasm
WASM        := wasm32-unknown-unknown
WASM_OPT    := tools/node_modules/.bin/wasm-opt
RELEASE_BIN := target/release/countersign

.PHONY: run test test-browser test-contract contract fuzz build site-release site-dev bench size deps-build deps-test deps-bench check clean

## make run: install what is missing, build in release mode, serve on http://localhost:3000 (SQLite in ./data/)
run: deps-build build
	./$(RELEASE_BIN) serve

## make test: install what is missing, check formatting and lints, and run every test (unit,
## integration on SQLite and PostgreSQL, then the size budget and the browser suite against the
## release build)
test: deps-test check
	cargo test --workspace --locked
	$(MAKE) build
	$(MAKE) test-contract
	$(MAKE) test-browser

## the API contract, short: schemathesis against /openapi.json on the release binary (see BENCHMARKS.md)
test-contract:
	scripts/api-contract.sh 25

## make fuzz: every fuzz target for a bounded time (FUZZ_SECONDS each, default 60), recorded in bench/results
fuzz:
	scripts/fuzz.sh $(or $(FUZZ_SECONDS),60)

## make contract: the API contract run at length, recorded in bench/results (see BENCHMARKS.md)
contract: deps-test build
	scripts/api-contract.sh 300

## the browser suite and the bundle's size budget, against the release build already made
test-browser:
	scripts/size-report.sh --check
	cd end2end && COUNTERSIGN_BIN=../$(RELEASE_BIN) npm test

## make bench: the load benchmark, the first-visit, inbox and ping latency benchmarks, the admin history at a million requests (see BENCHMARKS.md)
bench: deps-bench build
	bench/run.sh
	node bench/first-visit.mjs
	node bench/inbox-latency.mjs
	node bench/ping-latency.mjs
	bench/history.sh
	node bench/gate-overhead.mjs

## make size: the bundle's size report (raw, gzip, brotli)
size: deps-build site-release
	scripts/size-report.sh

build: site-release
	cargo build --locked --release -p server

deps-build:
	scripts/setup.sh build
deps-test:
	scripts/setup.sh test
deps-bench:
	scripts/setup.sh bench

# The site is rebuilt only when its inputs changed: wasm-opt takes a minute.
RELEASE_WASM := $(WASM_TARGET)/$(WASM)/wasm-release/app.wasm
SITE_INPUTS  := $(wildcard style/*.css) $(shell find public -type f) scripts/site.mjs

site-release:
	cargo build --locked -p app --lib --target $(WASM) --features hydrate --profile wasm-release --target-dir $(WASM_TARGET)
	$(MAKE) $(SITE)/hash.txt

$(SITE)/hash.txt: $(RELEASE_WASM) $(SITE_INPUTS)
	rm -rf $(SITE)
	wasm-bindgen --target web --no-typescript --out-dir $(PKG) --out-name countersign $(RELEASE_WASM)
	# The module's own memory starts zeroed and Rust leaves its first KiB unused: both let Binaryen
	# drop more (see BENCHMARKS.md "Bundle size").
	$(WASM_OPT) -Oz --converge --zero-filled-memory --low-memory-unused --strip-producers \
		--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
		--enable-mutable-globals --enable-reference-types --enable-multivalue \
		-o $(PKG)/countersign_bg.wasm $(PKG)/countersign_bg.wasm
	node scripts/site.mjs $(SITE)

## a quicker bundle for working on the UI (debug build, no wasm-opt); the tests never use it
site-dev:
	cargo build --locked -p app --lib --target $(WASM) --features hydrate --target-dir $(WASM_TARGET)
	rm -rf $(SITE)
	wasm-bindgen --target web --no-typescript --out-dir $(PKG) --out-name countersign \
		$(WASM_TARGET)/$(WASM)/debug/app.wasm
	node scripts/site.mjs $(SITE)
	# Dated in the past, so the next release build replaces this debug site.
	touch -d @0 $(SITE)/hash.txt

check:
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings

clean:
	rm -rf target
