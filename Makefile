# make demo: install what is needed, build the example for amd64 and arm64, run it on a sandbox.
# make test: install what is needed, then lint, type-check, build the docs and run the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: deps system-deps python-deps examples lint docs test unit demo demo-clean bench clean

deps: system-deps python-deps examples

system-deps:
	@bash scripts/install-system-deps.sh

python-deps: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -U pip
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]' --config-settings editable_mode=compat
	@touch $@

examples: system-deps
	@bash examples/prepare.sh

lint: python-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/ansible-lint -q playbooks roles inventory

# The manual as a site, into site/ (ignored): strict, so a broken link or anchor fails.
docs: python-deps
	$(BIN)/mkdocs build --strict --quiet

unit: python-deps
	$(BIN)/pytest -q tests/unit

test: deps lint docs
	$(BIN)/pytest -q -ra --durations=25 tests

demo: deps
	@bash scripts/demo.sh

demo-clean: python-deps
	@bash scripts/demo.sh clean

bench: deps
	$(PY) bench/build.py
	$(PY) bench/exchange.py
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache site
