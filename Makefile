# Countersign's build, as cargo-leptos would do it, without downloading tools from outside the package
# registries: the wasm bundle (own target dir, so server builds never invalidate it) → wasm-bindgen →
# wasm-opt → target/site, then the server binary.
SITE        := target/site
PKG         := $(SITE)/pkg
WASM_TARGET := target/wasm
WASM        := wasm32-unknown-unknown

.PHONY: run test build site-release site-dev assets bench deps-build deps-test deps-bench check clean

## make run: install what is missing, build in release mode, serve on http://localhost:3000 (SQLite in ./data/)
run: deps-build build
	./target/release/countersign serve

## make test: install what is missing and run every test (unit, integration on SQLite and PostgreSQL, browser)
test: deps-test
	cargo test --workspace --locked
	$(MAKE) site-dev
	# `cargo test` has built target/debug/countersign (the integration tests run it).
	cd end2end && COUNTERSIGN_BIN=../target/debug/countersign npm test

## make bench: the load benchmark (see BENCHMARKS.md)
bench: deps-bench build
	bench/run.sh

build: site-release
	cargo build --locked --release -p server

deps-build:
	scripts/setup.sh build
deps-test:
	scripts/setup.sh test
deps-bench:
	scripts/setup.sh bench

site-release:
	cargo build --locked -p app --lib --target $(WASM) --features hydrate --profile wasm-release --target-dir $(WASM_TARGET)
	wasm-bindgen --target web --no-typescript --out-dir $(PKG) --out-name countersign \
		$(WASM_TARGET)/$(WASM)/wasm-release/app.wasm
	wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
		--enable-mutable-globals --enable-reference-types --enable-multivalue \
		-o $(PKG)/countersign_bg.wasm $(PKG)/countersign_bg.wasm
	$(MAKE) assets

site-dev:
	cargo build --locked -p app --lib --target $(WASM) --features hydrate --target-dir $(WASM_TARGET)
	wasm-bindgen --target web --no-typescript --out-dir $(PKG) --out-name countersign \
		$(WASM_TARGET)/$(WASM)/debug/app.wasm
	$(MAKE) assets

assets:
	mkdir -p $(PKG)
	cat style/*.css > $(PKG)/countersign.css
	cp -r public/. $(SITE)/

check:
	cargo fmt --all --check
	cargo clippy --all-targets -- -D warnings

clean:
	rm -rf target
