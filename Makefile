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
# Debug builds keep every future's locals on the stack frames of its poll chain: the export's
# (pages, items, documents, attachment streams) can pass the 2 MiB a test thread gets by
# default. Release builds (Lambda) are far smaller; the largest futures are boxed as well.
TEST_STACK ?= 8388608

# One build for every command. Cargo picks dependency features from the packages a command
# selects: `-p integration-tests` leaves out the other members and their dev-dependencies
# (tokio's test-util, jsonschema's regex and serde_json features, lopdf's cipher padding), so it
# resolved tokio, hyper, h2 and the whole AWS SDK differently and rebuilt them (10 minutes after
# `make test`). Every debug command here therefore selects the whole workspace with its test
# targets, `cargo test --workspace …`, and reuses one set of artifacts; `make local` after
# `make test` compiles nothing. (Cargo's `resolver.feature-unification = "workspace"` would do
# this for any command but is not stable yet.)
BUILD := cargo test --workspace --no-run

.PHONY: help venv chromium test local fmt lint unit it clean

help:
	@echo "make local   run the whole system locally (connect, export, refresh) and print where the data landed"
	@echo "make test    fmt check, clippy -D warnings, every unit and integration test"
	@echo "make venv    the Python venv with the pinned AWS emulator (moto)"
	@echo "make chromium   headless Chromium for the browser test (Debian's package, if none is installed)"
	@echo "make fmt     format the code"
	@echo "make it T=name   run the integration tests whose name contains 'name'"
	@echo "make bench   throughput and memory benchmarks, release build (about 30 minutes)"
	@echo "make bench-peers   our Jira export beside airbyte-source-jira and an atlassian-python-api loop"

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

# A clean `make test` needs about 6 GiB of disk: the debug build (about 4 GiB), the venvs and
# Chromium, and what moto and Chromium spool to $TMPDIR while the suite runs. A disk that fills up
# mid-run fails S3 writes and browser tests with errors that do not say why (seen once in CI, with
# a few GiB free: 15 tests failed). So the free space is printed before the run and again after
# a failure, with a warning under MIN_FREE_GIB.
MIN_FREE_GIB ?= 10
.PHONY: disk-check
disk-check:
	@for dir in . "$${TMPDIR:-/tmp}"; do \
	  free=$$(df -Pk "$$dir" | awk 'NR == 2 { print int($$4 / 1048576) }'); \
	  echo "disk: $$free GiB free under $$dir"; \
	  if [ "$$free" -lt $(MIN_FREE_GIB) ]; then \
	    echo "warning: under $(MIN_FREE_GIB) GiB free under $$dir; tests that write to S3 or start Chromium fail when the disk fills up" >&2; \
	  fi; \
	done

# After the tests, the privacy scan reads every log line the suite wrote and fails on any
# secret, token or account id in them (PRIVACY.md P7; tests/src/bin/scan-logs.rs).
# (scan-logs is built by `cargo test --workspace` with the workspace's features; `cargo run -p`
# would resolve them differently and rebuild the AWS SDK.)
test: disk-check venv chromium lint lint-infra
	@rm -rf $(PRIVACY_DIR)
	RUST_MIN_STACK=$(TEST_STACK) cargo test --workspace -- --test-threads=$(TEST_THREADS) \
	  || { status=$$?; $(MAKE) --no-print-directory disk-check; exit $$status; }
	$${CARGO_TARGET_DIR:-target}/debug/scan-logs $(PRIVACY_DIR)

# The whole system on this machine: emulator, fake Atlassian Cloud, the four functions' handlers,
# walking connect → export → refresh (tests/src/bin/local.rs). Logs go to local.log. With
# ATLASSIAN_JIRA_CLIENT_ID/_SECRET (and/or the CONFLUENCE pair) set it connects a real site
# instead: README, "make local against a real Atlassian site".
local: venv
	$(BUILD)
	$${CARGO_TARGET_DIR:-target}/debug/local 2> local.log

unit:
	cargo test --workspace --lib --bins

it: venv chromium
	RUST_MIN_STACK=$(TEST_STACK) cargo test --workspace --test it -- --test-threads=$(TEST_THREADS) $(T)

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
# jemalloc (shared/src/lib.rs) fixes the page size when it is built and aborts on a kernel with
# larger pages; arm64 kernels use 4, 16 or 64 KiB, so it is built for 64 KiB (2^16), which runs
# on all of them (Lambda's Graviton uses 4 KiB).
LAMBDAS       := oauth-callback token-refresh export connectors-api
LAMBDA_TARGET := aarch64-unknown-linux-gnu
MAX_ZIP_BYTES := 8388608
LAMBDA_DIR     = $${CARGO_TARGET_DIR:-target}/lambda

build: venv
	@if command -v rustup >/dev/null 2>&1; then \
	  rustup target list --installed | grep -qx $(LAMBDA_TARGET) || rustup target add $(LAMBDA_TARGET); \
	fi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" JEMALLOC_SYS_WITH_LG_PAGE=16 cargo lambda build --release --arm64 \
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
.PHONY: bench bench-peers bench-s3 peers-venvs
BENCH_FLAGS ?=

# Exports are stored in bench-s3 (tests/bench-s3: s3s's HTTP service over an in-memory store),
# built from crates.io into the target dir the first time; DynamoDB, KMS, EventBridge and Secrets
# Manager stay on moto. Tests keep moto for everything.
BENCH_S3_TARGET = $${CARGO_TARGET_DIR:-target}/bench-s3
BENCH_S3        = $(BENCH_S3_TARGET)/release/bench-s3

bench-s3:
	CARGO_TARGET_DIR=$(BENCH_S3_TARGET) cargo build --release --locked -q \
		--manifest-path tests/bench-s3/Cargo.toml

# The peers, each in its own venv with every package pinned (peers/requirements-*.txt, from pip
# freeze; installed with --no-deps so pip resolves nothing).
AIRBYTE_VENV     := $(VENV)/airbyte
ATLASSIAN_VENV   := $(VENV)/atlassian
AIRBYTE_STAMP    := $(AIRBYTE_VENV)/.installed-$(shell sha256sum peers/requirements-airbyte.txt 2>/dev/null | cut -c1-16)
ATLASSIAN_STAMP  := $(ATLASSIAN_VENV)/.installed-$(shell sha256sum peers/requirements-atlassian.txt 2>/dev/null | cut -c1-16)

$(AIRBYTE_STAMP): peers/requirements-airbyte.txt
	@test -x $(AIRBYTE_VENV)/bin/python || $(PYTHON) -m venv $(AIRBYTE_VENV)
	$(AIRBYTE_VENV)/bin/pip install --disable-pip-version-check --quiet --no-deps -r $<
	@rm -f $(AIRBYTE_VENV)/.installed-*
	@touch $@

$(ATLASSIAN_STAMP): peers/requirements-atlassian.txt
	@test -x $(ATLASSIAN_VENV)/bin/python || $(PYTHON) -m venv $(ATLASSIAN_VENV)
	$(ATLASSIAN_VENV)/bin/pip install --disable-pip-version-check --quiet --no-deps -r $<
	@rm -f $(ATLASSIAN_VENV)/.installed-*
	@touch $@

peers-venvs: $(AIRBYTE_STAMP) $(ATLASSIAN_STAMP)

# Throughput and memory of the refresh schedule (10,000 connections), the Jira and Confluence
# exports (a 2 GiB attachment included), the peers beside the Jira export, and the cold start of
# each function binary, against an emulator, an S3 server and fake sites it starts itself: a
# markdown table on stdout and artifacts/bench.json. Not part of `make test`.
# `make bench BENCH_FLAGS=--help`. A release build: one more build than `make test`'s, by design
# (optimised code is what is measured); it selects the whole workspace like the debug commands.
RELEASE := cargo build --release --workspace --bins

bench: venv peers-venvs bench-s3
	$(RELEASE)
	$${CARGO_TARGET_DIR:-target}/release/bench --s3-server $(BENCH_S3) $(BENCH_FLAGS)

# Only the Jira export beside airbyte-source-jira 4.0.0 and the atlassian-python-api loop.
bench-peers: venv peers-venvs bench-s3
	$(RELEASE)
	$${CARGO_TARGET_DIR:-target}/release/bench --only peers --s3-server $(BENCH_S3) $(BENCH_FLAGS)
