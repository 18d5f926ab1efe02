# The two commands: `make run` (the platform with demo data) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=

.PHONY: run test test-fast test-slow install chromium haproxy axe audit lint bench stop clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml client/pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 is needed (python3.11 or python3 on PATH)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,embedded]' -e './client[pandas]'
	@touch $@

run: install
	$(BIN)/python -m portal.launcher run

# Browser tests drive Debian's Chromium (Playwright cannot download its own browser here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Chromium for the browser tests (apt-get install chromium)…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null; fi; }

# The multi-host drill (tests/portal/test_multihost.py) balances its web hosts with Debian's HAProxy.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || { \
	  echo "Installing HAProxy for the multi-host test (apt-get install haproxy)…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq haproxy >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq haproxy >/dev/null; fi; }

# axe-core (pinned in tests/browser/package-lock.json) is injected into every page the browser
# tests visit; `npm ci` installs exactly the locked version, checked against its integrity hash.
AXE := tests/browser/node_modules/axe-core/axe.min.js
axe: $(AXE)

$(AXE): tests/browser/package.json tests/browser/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "Installing Node.js and npm for the browser tests' axe-core (apt-get install npm)…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq npm >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq npm >/dev/null; fi; }
	npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
	@touch $@

test: install chromium haproxy axe
	$(BIN)/python -m portal.launcher test $(ARGS)

# Parallel-safe tests only, on two pytest-xdist workers.
test-fast: install
	$(BIN)/python -m portal.launcher test -n 2 -m "not slow and not browser" $(ARGS)

test-slow: install chromium haproxy axe
	$(BIN)/python -m portal.launcher test -m "slow" $(ARGS)

# Security checks: bandit (no high-severity finding), `check --deploy` under the production
# settings, and verify_audit of every tenant's chain in the configured database (set up if needed).
audit: install
	$(BIN)/python -m portal.launcher audit

lint: install
	$(BIN)/ruff check .

stop:
	$(BIN)/python -c "from portal import embedded; embedded.stop()"

clean: stop
	rm -rf var
