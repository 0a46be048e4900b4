# LiveDesk developer entry points. Each target works on a fresh machine by itself.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080
PYTEST_ARGS ?=

.PHONY: run install install-test system-deps lint typecheck test test-all bench clean lock venv

# A stock Debian/Ubuntu python3 has no `venv`/`ensurepip` until python3-venv is installed:
# `python3 -m venv` then fails *after* making a .venv without pip, which a later run used to
# trust. So: a .venv whose python cannot import pip (and that is a venv: pyvenv.cfg) is
# removed before make decides anything, and made again below.
ifneq ($(wildcard $(VENV)/pyvenv.cfg),)
ifneq ($(shell $(BIN)/python -c 'import pip' >/dev/null 2>&1 || echo broken),)
$(info $(VENV) has no working pip (left by a failed set-up): removing it to make it again)
$(shell rm -rf '$(VENV)')
endif
endif

# Make $(VENV) with pip, or leave none: `python3 -m venv`, else virtualenv (the module or the
# command) when installed, else say exactly what to install. Never a half-made $(VENV).
define MAKE_VENV
set -e; \
command -v $(PY) >/dev/null 2>&1 || { echo "error: $(PY) not found: install Python >= 3.11 (Debian/Ubuntu: apt-get install python3 python3-venv)"; exit 1; }; \
$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: LiveDesk needs Python >= 3.11; $(PY) is $$($(PY) -V 2>&1). Run make PY=python3.11 (or newer)"; exit 1; }; \
ver=$$($(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
log=$$(mktemp); \
if $(PY) -m venv $(VENV) >$$log 2>&1 && $(BIN)/python -c 'import pip' 2>/dev/null; then rm -f $$log; exit 0; fi; \
rm -rf '$(VENV)'; \
for v in "$(PY) -m virtualenv" "virtualenv -p $(PY)"; do \
  if $$v --version >/dev/null 2>&1 && $$v -q $(VENV) >>$$log 2>&1 && $(BIN)/python -c 'import pip' 2>/dev/null; then \
    echo "$(PY) -m venv cannot make a virtual environment with pip here; made $(VENV) with $$v instead"; rm -f $$log; exit 0; fi; \
  rm -rf '$(VENV)'; \
done; \
echo "error: $(PY) ($$ver) cannot make a virtual environment with pip: its venv/ensurepip module is missing"; \
echo "  $(PY) -m venv said:"; sed -e '/^ *$$/d' -e 's/^/    | /' $$log; \
echo "  Debian/Ubuntu: apt-get install python$$ver-venv   (python3-venv installs it for the default python3)"; \
echo "  or install virtualenv (apt-get install python3-virtualenv, or pip install --user virtualenv)"; \
echo "  then run make again. No $(VENV) was left behind."; \
rm -f $$log; exit 1
endef

# Re-install only when pyproject.toml changes (the stamp lives inside .venv).
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || { $(MAKE_VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

# Only the virtual environment (no install): what `make run` / `make test` make first.
venv:
	@test -x $(BIN)/python || { $(MAKE_VENV); }

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
# promtool (`promtool check rules` / `test rules` on deploy/prometheus/, tests/deploy/) comes
# with Debian's prometheus package: installed without its recommends (no exporters), and its
# server's service stopped and disabled likewise (only the promtool binary is used).
system-deps:
	@need=""; \
	command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || need="$$need chromium"; \
	command -v redis-server >/dev/null 2>&1 || need="$$need redis-server"; \
	command -v turnserver >/dev/null 2>&1 || test -x /usr/bin/turnserver || need="$$need coturn"; \
	command -v npm >/dev/null 2>&1 || need="$$need npm"; \
	fc-list 2>/dev/null | grep -qi 'noto.*cjk' || need="$$need fonts-noto-cjk"; \
	command -v promtool >/dev/null 2>&1 || need="$$need prometheus"; \
	if [ -n "$$need" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$need"; \
	    SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	    rest=$$(echo "$$need" | sed 's/ prometheus//'); \
	    $$SUDO apt-get update -qq && \
	    if [ -n "$$rest" ]; then DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$rest >/dev/null; fi && \
	    case "$$need" in *prometheus*) DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	      --no-install-recommends prometheus >/dev/null;; esac; \
	    for svc in coturn prometheus; do case "$$need" in *$$svc*) command -v systemctl >/dev/null 2>&1 && \
	      $$SUDO systemctl disable --now $$svc >/dev/null 2>&1 || true;; esac; done; \
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

# docker/requirements.lock: the exact versions (with hashes) docker/Dockerfile installs,
# resolved from [project] dependencies and the `otlp` extra (the image can export traces) by
# pip-tools in a throw-away venv. `make lock` keeps
# the pinned versions that still fit and resolves what changed; `make lock LOCK_ARGS=--upgrade`
# takes the newest versions the bounds allow (docs/deployment.md "Dependencies and the lock").
LOCK_ARGS ?=
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(PY) -m venv "$$tmp/venv" && "$$tmp/venv/bin/python" -m pip install -q "pip-tools>=7.4,<8" && \
	CUSTOM_COMPILE_COMMAND="make lock" "$$tmp/venv/bin/pip-compile" --quiet --generate-hashes \
	  --extra otlp --strip-extras --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
	  --output-file docker/requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) build *.egg-info tests/artifacts test-artifacts .mypy_cache node_modules
