# simroute — two commands: `make run` and `make test` (see README).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## run: set up the venv, then simulate the default synthetic agent fleet and the real Azure conv trace
run: $(STAMP)
	$(BIN)/simroute run hydra.run.dir=outputs/make_run/agent_fleet
	$(BIN)/simroute run workload=azure_conv hydra.run.dir=outputs/make_run/azure_conv
	@echo "results: outputs/make_run/*/ (requests.parquet, summary.json, *.png)"

## test: lint, type-check and run the fast test suite
test: $(STAMP)
	$(BIN)/ruff check simroute tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m benchmark --benchmark-enable

clean:
	rm -rf $(VENV) outputs multirun .mypy_cache .ruff_cache
