# pg_rest — the two commands: `make up` (install everything, start a dev cluster, print the
# URL) and `make test` (every test). Both idempotent. See README.md.

SHELL        := /bin/bash
PG_CONFIG    ?= /usr/lib/postgresql/15/bin/pg_config
PGRX_VERSION := 0.18.1
ROOT         := $(abspath .)
VENV         := $(ROOT)/target/venv
# rustup's cargo, also when the calling shell has not sourced ~/.cargo/env.
export PATH  := $(HOME)/.cargo/bin:$(PATH)

.PHONY: up down install deps build test unit lint integration bench conformance conformance-variants clean

## Dependencies, build, install into the system PostgreSQL 15 (no cluster).
install: deps
	cargo pgrx install --release --pg-config $(PG_CONFIG)

## Debian packages, the pinned cargo-pgrx, `cargo pgrx init` against the system pg_config.
deps:
	@scripts/deps.sh $(PGRX_VERSION) $(PG_CONFIG)

## Everything, then a local dev cluster with pg_rest loaded and a demo schema.
up: install
	@scripts/dev-cluster.sh up

down:
	@scripts/dev-cluster.sh down

## Every test: formatting and lints, unit tests, integration tests against a real cluster.
test: install lint unit integration

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test -p pg_rest_core
	cargo test -p pg_rest --lib

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	touch $@

# The REST behaviour once more over HTTP/2 (prior knowledge): same tests, h2 clients.
REST_TESTS := tests/test_rest.py tests/test_read_dialect.py tests/test_writes.py tests/test_rpc.py \
              tests/test_auth.py tests/test_formats.py tests/test_media_handlers.py tests/test_fuzz.py

integration: $(VENV)/.installed
	$(VENV)/bin/pytest -q tests/
	PG_REST_HTTP2=1 $(VENV)/bin/pytest -q $(REST_TESTS)

## PostgREST's conformance corpus (../shared/conformance) on a throwaway cluster; not in `test`.
## Extra runner arguments: make conformance ARGS='--only auth'.
conformance: install
	scripts/conformance.sh $(ARGS)

## The corpus cases that need another server configuration, each group on a server so configured.
conformance-variants: install
	scripts/conformance-variants.sh

## wrk against pg_rest and pgbench on the same SQL, on `make up`'s cluster.
bench: up $(VENV)/.installed
	benches/run.sh
	benches/protocols.sh
	benches/realtime.sh
	benches/replicas.sh

clean: down
	cargo clean
