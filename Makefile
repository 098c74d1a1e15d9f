# The front door. `make test` and `make local` install what they need by themselves.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PYTHON  ?= python3
REQS    := requirements-dev.txt
STAMP   := $(VENV)/.installed-$(shell sha256sum $(REQS) 2>/dev/null | cut -c1-16)
# Integration tests are I/O bound (emulator, fake site): run more of them than there are cores.
TEST_THREADS ?= 8

.PHONY: help venv test fmt lint unit it clean

help:
	@echo "make test    fmt check, clippy -D warnings, every unit and integration test"
	@echo "make venv    the Python venv with the pinned AWS emulator (moto)"
	@echo "make fmt     format the code"
	@echo "make it T=name   run the integration tests whose name contains 'name'"

venv: $(STAMP)

$(STAMP): $(REQS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet -r $(REQS)
	@rm -f $(VENV)/.installed-*
	@touch $@

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

test: venv lint
	cargo test --workspace -- --test-threads=$(TEST_THREADS)

unit:
	cargo test --workspace --lib --bins

it: venv
	cargo test -p integration-tests --test it -- --test-threads=$(TEST_THREADS) $(T)

clean:
	cargo clean
	rm -rf $(VENV)
