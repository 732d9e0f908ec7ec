# scimd — the two commands: `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run build release deb image test test-rust lint fmt conformance bench bench-ab bench-instructions clean-data help

help:
	@echo "make run          build and start scimd on embedded SQLite (config/default.toml)"
	@echo "make test         fmt check, clippy -D warnings, all tests on SQLite and PostgreSQL"
	@echo "make deb          build the Debian package (target/debian/scimd_VERSION_ARCH.deb)"
	@echo "make image        build the container image scimd:latest with podman (Containerfile)"
	@echo "make conformance  run the scim2-tester checker against a fresh scimd"
	@echo "make bench        100k users and a 100k-member group: throughput, p50/p99; Entra's initial cycle (SQLite and PostgreSQL); memory under Argon2 bursts; event delivery (events/s, lag); /Bulk vs single POSTs"
	@echo "make bench-ab A=OLD B=NEW  two (or three, C=) scimd binaries side by side, interleaved: the five identity-provider figures on both backends"
	@echo "make bench-instructions A=OLD B=NEW  instructions per request under callgrind (needs valgrind), side by side: a measure that does not drift with the machine"

build:
	scripts/ensure-build-deps.sh
	$(CARGO) build -p scimd

release:
	scripts/ensure-build-deps.sh
	$(CARGO) build --release -p scimd

## The Debian package of the release binary (docs/DEPLOY.md).
deb: release
	scripts/build-deb.sh target/release/scimd

## The container image of the release binary, built by podman from nothing
## but this machine's files (docs/DEPLOY.md).
image: release
	scripts/build-image.sh target/release/scimd

## Start scimd on embedded SQLite (data/scimd.db) with config/default.toml.
run:
	@echo "building scimd, first build takes a few minutes"
	scripts/ensure-build-deps.sh
	$(CARGO) build --release -p scimd
	./target/release/scimd --config config/default.toml serve

## Everything CI checks: scim-store's import graph has no cycle
## (scripts/store-graph.sh), the Debian build dependencies installed
## (scripts/ensure-build-deps.sh: libxmlsec1 for SAML, libpq, libsqlite3), formatting, lints, and every test on both backends
## (the console's browser test needs chromium + chromium-driver: installed
## by scripts/ensure-chromium.sh when missing), then the Debian package and
## the container image built around the test binary, installed and run
## (scripts/test-package.sh needs root; scripts/test-image.sh needs podman,
## which it installs where apt can).
test:
	scripts/store-graph.sh >/dev/null
	scripts/ensure-build-deps.sh
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	scripts/ensure-chromium.sh
	TEST_DATABASE_URL="$$(scripts/test-postgres.sh)" && export TEST_DATABASE_URL && \
	$(CARGO) test --workspace --all-targets && \
	scripts/test-package.sh target/debug/scimd && \
	scripts/test-image.sh target/debug/scimd

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## SCIM conformance: scim2-tester (PyPI) in a local venv against a fresh scimd.
conformance: build
	scripts/conformance.sh

## Benchmarks (not run by CI): see docs/BENCHMARKS.md and docs/BENCHMARKS-GROUPS.md.
bench: release
	scripts/bench.sh
	scripts/bench-groups.sh
	scripts/bench-entra.sh
	scripts/bench-events.sh
	scripts/bench-bulk.sh
	scripts/bench-memory.sh

## Binaries side by side in one run, taking turns on the same database
## (docs/BENCHMARKS.md, "Side by side"); build them first.
bench-ab:
	@if [ -z "$(A)" ] || [ -z "$(B)" ]; then echo "usage: make bench-ab A=OLD_BIN B=NEW_BIN [C=BIN]" >&2; exit 2; fi
	scripts/bench-ab.sh $(A) $(B) $(C)

## scimd's instructions per request under callgrind, binaries side by side
## (docs/BENCHMARKS.md, "Instructions per request"); build them first.
bench-instructions:
	@if [ -z "$(A)" ] || [ -z "$(B)" ]; then echo "usage: make bench-instructions A=OLD_BIN B=NEW_BIN [C=BIN]" >&2; exit 2; fi
	scripts/bench-instructions.sh $(A) $(B) $(C)

clean-data:
	rm -rf data
