# Preflight. `make run` serves the app; `make test` runs lint, types and every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast lint types pytest bench clean test-cluster

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
# llama-cpp-python compiles llama.cpp (a few minutes); a native build crashes on some CPUs.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install --quiet -e '.[dev]'
# The SLO tests query a real Prometheus and the browser tests drive a real Chromium: Debian's,
# installed once per machine (as root). Playwright never downloads a browser here.
	command -v prometheus >/dev/null || apt-get install -y -q prometheus \
		|| (apt-get update -q && apt-get install -y -q prometheus)
	command -v chromium >/dev/null || apt-get install -y -q chromium \
		|| (apt-get update -q && apt-get install -y -q chromium)
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/preflight run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: install
	$(BIN)/mypy .

pytest: install
	$(BIN)/pytest -q

test: lint types pytest

# The unit tier (under a minute on two cores): no PostgreSQL, Temporal, LLM server, browser
# or `preflight` process; `make test` runs it with the rest.
test-fast: install
	$(BIN)/pytest -q -m "not integration" -n auto

# The deploy journey against the real cluster KUBECONFIG points to (skipped without one).
# PREFLIGHT_TEST_NAMESPACE (default `default`) must exist; PREFLIGHT_TEST_CONTEXT picks a context.
test-cluster: install
	$(BIN)/pytest -q -rs tests/deploy/test_cluster.py

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf .preflight .mypy_cache .pytest_cache .ruff_cache
