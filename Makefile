# Rongxin: `make run` (the product's main job) and `make test` (the whole suite) on a fresh
# Debian machine. Both create .venv if missing and install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the product needs: libcrypto 3 (SM2 backend) and the openssl command
# (interop tests, `openssl speed` baselines); a CJK font for the registration certificate's
# Chinese text; poppler-utils and zbar-tools to render a certificate and read its QR code
# back in the tests; chromium for web evidence capture (driven by Playwright, DESIGN.md);
# prometheus for promtool, which checks the shipped alert rules (deploy/prometheus/) in the tests.
SYSTEM_PACKAGES := openssl libssl3 ffmpeg fonts-wqy-zenhei poppler-utils zbar-tools chromium prometheus
# The console's browser-side JavaScript (SM2/SM3: sm-crypto; zip: fflate), npm packages pinned by
# the committed api/console/vendor/package-lock.json; `npm ci` runs again only when the lock changes.
CONSOLE_VENDOR := api/console/vendor
STAMP_JS := $(CONSOLE_VENDOR)/node_modules/.installed
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test lint dist dist-check system-packages console-js compile clean help

help:
	@echo "make run    - set up, self-test the crypto, and run the six-node local consortium (Ctrl-C stops it)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make lint   - ruff, mypy and the import-linter layer contracts"
	@echo "make dist   - the rongxin wheel (SDK, CLI, node) and every wheel it needs in dist/, for an offline pip install"

system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,dev]'
	@touch $@ $(STAMP_RUN)

$(STAMP_JS): $(CONSOLE_VENDOR)/package-lock.json $(CONSOLE_VENDOR)/package.json
	@command -v npm >/dev/null 2>&1 || { echo "installing Debian packages: nodejs npm"; SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO="sudo"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends nodejs npm; }
	cd $(CONSOLE_VENDOR) && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

console-js: $(STAMP_JS)

# The project's own modules, compiled once: an editable install compiles none, and where
# PYTHONDONTWRITEBYTECODE is set every process (each node, each CLI call) would compile what it
# imports again (measured: 0.3-0.4 s of CPU per node start, about a seventh of it).
PACKAGES := api ledger forensics privacy fingerprint bench
compile: | $(BIN)/python
	@$(BIN)/python -m compileall -q -j 0 $(PACKAGES) >/dev/null

DATA ?= .rongxin
run: system-packages $(STAMP_RUN) $(STAMP_JS) compile
	$(BIN)/rongxin selftest
	$(BIN)/rongxin up --data $(DATA)

test: system-packages $(STAMP_TEST) $(STAMP_JS) compile
	$(BIN)/python -m pytest -q -n 2 --dist loadscope

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# dist/: the rongxin wheel and the wheels of all its dependencies, so that
#   pip install --no-index --find-links dist rongxin
# works on a machine without network (Python 3.11, x86-64 Linux). `make dist-check` proves it
# in a fresh venv (deploy/dist-check.sh).
dist: $(STAMP_RUN)
	rm -rf dist
	$(BIN)/pip wheel -q . -w dist
	@ls dist/rongxin-*.whl && du -sh dist

dist-check: dist
	deploy/dist-check.sh dist

clean:
	rm -rf $(VENV) dist build $(CONSOLE_VENDOR)/node_modules .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache
