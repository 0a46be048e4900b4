# LiveDesk developer entry points. Each target works on a fresh machine by itself.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: run install install-test system-deps lint typecheck test test-all bench clean

# Re-install only when pyproject.toml changes (the stamp lives inside .venv).
$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

$(BIN)/.installed-test: $(BIN)/.installed node_modules/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

# axe-core (accessibility checks injected into Playwright pages: tests/e2e/axe.py), pinned in
# package.json/package-lock.json; no build step, `npm ci` only. Needs node + npm.
# `make test` runs system-deps first, which installs npm when it is missing.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: make system-deps installs it"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(BIN)/.installed

install-test: $(BIN)/.installed-test

# Debian chromium (for Playwright, never `playwright install`), redis-server and coturn (its
# `turnserver` binary: tests/integration/test_coturn_denied_peers.py), when missing. The coturn
# package's own service is stopped and disabled: the tests start their own on loopback.
system-deps:
	@need=""; \
	command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || need="$$need chromium"; \
	command -v redis-server >/dev/null 2>&1 || need="$$need redis-server"; \
	command -v turnserver >/dev/null 2>&1 || test -x /usr/bin/turnserver || need="$$need coturn"; \
	command -v npm >/dev/null 2>&1 || need="$$need npm"; \
	fc-list 2>/dev/null | grep -qi 'noto.*cjk' || need="$$need fonts-noto-cjk"; \
	if [ -n "$$need" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$need"; \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$need >/dev/null; \
	    case "$$need" in *coturn*) command -v systemctl >/dev/null 2>&1 && \
	      $$SUDO systemctl disable --now coturn >/dev/null 2>&1 || true;; esac; \
	  else echo "warning: missing$$need and no apt-get"; fi; \
	fi

run: install
	$(BIN)/livedesk serve --dev --host $(HOST) --port $(PORT)

# ruff: pyflakes, bugbear, import order, pyupgrade (rules in pyproject.toml), after typecheck
lint: install-test typecheck
	$(BIN)/python -m ruff check gateway signaling benchmarks tests

# mypy over signaling/ (strict) and gateway/ (default checks): [tool.mypy] in pyproject.toml
typecheck: install-test
	$(BIN)/python -m mypy

# `make test`: the representative tier (under 15 min on 2 cores): everything but the tests
# marked `slow`, whose coverage a faster sibling also gives. `make test-all`: every test.
# Which tier runs what: README.md "Tests" and docs/testing.md.
test: system-deps install-test lint sdk-test
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

test-all: system-deps install-test lint sdk-test
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The JavaScript SDK's tests with Node's own runner (docs/sdk.md): reconnect/resume against a
# fake socket, the generated types' drift, one run against a real `livedesk serve --dev`.
.PHONY: sdk-test
sdk-test: install-test
	@ws=""; node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' || ws=--experimental-websocket; \
	LIVEDESK_PYTHON=$(abspath $(BIN))/python node $$ws --test sdk/js/test/

bench: install-test system-deps
	$(BIN)/python -m benchmarks.bot

clean:
	rm -rf $(VENV) build *.egg-info tests/artifacts .mypy_cache node_modules
