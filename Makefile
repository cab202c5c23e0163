# Fumarole: `make demo` serves the dashboards on the sample archive; `make test` passes the tests.
# Both start from a fresh machine: they create .venv, install what is missing and go on.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5006

.PHONY: demo test setup setup-test sample sample-tiny serve chromium lint bench clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip uv

$(VENV)/.installed: pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q -p $(BIN)/python -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip install -q -p $(BIN)/python -e ".[test]"
	touch $(VENV)/.installed $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

sample: setup
	$(BIN)/fumarole sample --if-missing

sample-tiny: setup
	$(BIN)/fumarole sample --resolution tiny --if-missing

serve: setup
	$(BIN)/fumarole serve --port $(PORT)

demo: sample serve

# Debian's chromium drives the browser tests (Playwright's own browser download cannot work here).
chromium:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: setup-test chromium
	$(BIN)/fumarole sample --resolution tiny --if-missing
	$(BIN)/ruff check app dashboards tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/pytest

lint: setup-test
	$(BIN)/ruff check app dashboards tests benchmarks
	$(BIN)/lint-imports

bench: setup-test
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) data
