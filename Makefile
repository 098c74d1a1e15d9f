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

.PHONY: help venv chromium test local fmt lint unit it clean

help:
	@echo "make local   run the whole system locally (connect, export, refresh) and print where the data landed"
	@echo "make test    fmt check, clippy -D warnings, every unit and integration test"
	@echo "make venv    the Python venv with the pinned AWS emulator (moto)"
	@echo "make chromium   headless Chromium for the browser test (Debian's package, if none is installed)"
	@echo "make fmt     format the code"
	@echo "make it T=name   run the integration tests whose name contains 'name'"

venv: $(STAMP)

$(STAMP): $(REQS)
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check --quiet -r $(REQS)
	@rm -f $(VENV)/.installed-*
	@touch $@

# The browser test (tests/tests/it/browser.rs) drives headless Chromium over the DevTools
# protocol. Installs Debian's package when no Chromium is on PATH (CHROMIUM names another binary).
CHROMIUM_NAMES := chromium chromium-browser google-chrome-stable google-chrome

chromium:
	@if [ -n "$${CHROMIUM:-}" ] && command -v "$$CHROMIUM" >/dev/null 2>&1; then exit 0; fi; \
	for name in $(CHROMIUM_NAMES); do command -v $$name >/dev/null 2>&1 && exit 0; done; \
	command -v apt-get >/dev/null 2>&1 || { echo "no Chromium found and no apt-get to install it: install Chromium, or set CHROMIUM to its binary"; exit 1; }; \
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "installing Chromium for the browser test (apt-get install chromium)"; \
	$$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends chromium

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

PRIVACY_DIR = $${CARGO_TARGET_DIR:-target}/tmp/privacy

# After the tests, the privacy scan reads every log line the suite wrote and fails on any
# secret, token or account id in them (PRIVACY.md P7; tests/src/bin/scan-logs.rs).
# (scan-logs is built by `cargo test --workspace` with the workspace's features; `cargo run -p`
# would resolve them differently and rebuild the AWS SDK.)
test: venv chromium lint lint-infra
	@rm -rf $(PRIVACY_DIR)
	cargo test --workspace -- --test-threads=$(TEST_THREADS)
	$${CARGO_TARGET_DIR:-target}/debug/scan-logs $(PRIVACY_DIR)

# The whole system on this machine: emulator, fake Atlassian Cloud, the four functions' handlers,
# walking connect → export → refresh (tests/src/bin/local.rs). Logs go to local.log. With
# ATLASSIAN_JIRA_CLIENT_ID/_SECRET (and/or the CONFLUENCE pair) set it connects a real site
# instead: README, "make local against a real Atlassian site".
local: venv
	cargo build -q -p integration-tests --bin local
	$${CARGO_TARGET_DIR:-target}/debug/local 2> local.log

unit:
	cargo test --workspace --lib --bins

it: venv chromium
	cargo test -p integration-tests --test it -- --test-threads=$(TEST_THREADS) $(T)

clean:
	cargo clean
	rm -rf $(VENV)

# ---------------------------------------------------------------- infrastructure (infra/)
.PHONY: lint-infra build deploy

# checkov pins boto3==1.35.49; in .venv it would downgrade the emulator's boto3/botocore, so it
# gets a venv of its own, pinned in infra/requirements-checkov.txt.
CHECKOV_VENV  := $(VENV)/checkov
CHECKOV_REQS  := infra/requirements-checkov.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha256sum $(CHECKOV_REQS) 2>/dev/null | cut -c1-16)

$(CHECKOV_STAMP): $(CHECKOV_REQS) | $(STAMP)
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --disable-pip-version-check --quiet -r $(CHECKOV_REQS)
	@rm -f $(CHECKOV_VENV)/.installed-*
	@touch $@

# The SAM template: cfn-lint, checkov (suppressions and reasons: infra/.checkov.yaml), and the
# policy tests (infra/tests: least-privilege allow-lists, encryption, retention, public access).
lint-infra: venv $(CHECKOV_STAMP)
	$(VENV)/bin/cfn-lint infra/template.yaml
	$(CHECKOV_VENV)/bin/checkov -f infra/template.yaml --config-file infra/.checkov.yaml
	PYTHONDONTWRITEBYTECODE=1 $(VENV)/bin/pytest -q -p no:cacheprovider infra/tests

# Release zips for arm64 (Graviton), cross-compiled by cargo-lambda with zig as the linker (both
# from PyPI, in .venv), into the workspace's target dir: target/lambda/<name>/bootstrap.zip.
LAMBDAS       := oauth-callback token-refresh export connectors-api
LAMBDA_TARGET := aarch64-unknown-linux-gnu
MAX_ZIP_BYTES := 8388608
LAMBDA_DIR     = $${CARGO_TARGET_DIR:-target}/lambda

build: venv
	@if command -v rustup >/dev/null 2>&1; then \
	  rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET); \
	fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 \
	  --output-format zip $(addprefix -p ,$(LAMBDAS))
	@status=0; for name in $(LAMBDAS); do \
	  zip="$(LAMBDA_DIR)/$$name/bootstrap.zip"; \
	  if [ ! -f "$$zip" ]; then echo "missing: $$zip"; status=1; continue; fi; \
	  bytes=$$(stat -c %s "$$zip"); \
	  awk -v n="$$name" -v b="$$bytes" -v z="$$zip" 'BEGIN { printf "%-16s %9d bytes  %5.2f MiB  %s\n", n, b, b / 1048576, z }'; \
	  if [ "$$bytes" -gt $(MAX_ZIP_BYTES) ]; then echo "$$name: larger than 8 MiB"; status=1; fi; \
	done; exit $$status

# sam build (cargo-lambda, from .venv) + sam deploy --guided, from infra/ (samconfig.toml there).
# After the first deploy, `make deploy SAM_DEPLOY_FLAGS=` deploys with the saved answers.
SAM_DEPLOY_FLAGS ?= --guided

deploy: venv
	@command -v sam >/dev/null 2>&1 || { \
	  echo "make deploy needs the AWS SAM CLI (sam), which is not installed."; \
	  echo "Install it with 'pipx install aws-sam-cli' (or see README, Deploy), then run make deploy again."; \
	  exit 1; }
	cd infra && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" sam build --beta-features
	cd infra && sam deploy $(SAM_DEPLOY_FLAGS)

# ---------------------------------------------------------------- benchmarks
.PHONY: bench
BENCH_FLAGS ?=

# Throughput and memory of the refresh schedule (10,000 connections), the Jira and Confluence
# exports (a 2 GiB attachment included) and the cold start of each function binary, in a
# release build, against an emulator and fake sites it starts itself: a markdown table on
# stdout and artifacts/bench.json. Not part of `make test`. `make bench BENCH_FLAGS=--help`.
bench: venv
	cargo build --release -p integration-tests --bin bench --bin fake-atlassian \
		-p oauth-callback -p connectors-api -p token-refresh -p export \
		--bin oauth-callback --bin connectors-api --bin token-refresh --bin export
	$${CARGO_TARGET_DIR:-target}/release/bench $(BENCH_FLAGS)
