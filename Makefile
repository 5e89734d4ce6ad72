# offerflow: `make run` runs the whole pipeline through the Prefect flow, `make test` runs the tests.
# Both create .venv and install the project on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

# Prefect runs in ephemeral mode (no server) with its state inside the project.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90
export PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW ?= ignore

.PHONY: install run test repro bench clean lock

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	@touch $@

run: install
	$(BIN)/offerflow flow --params params.yaml

test: install
	$(BIN)/python -m pytest

repro: install
	$(BIN)/offerflow dvc-yaml
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dvc repro

bench: install
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

# Re-resolve the pins from pyproject.toml's ranges (needs network to the package index).
lock: install
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --quiet --no-header \
	  --annotation-style line -o requirements.lock.new
	{ sed -n '1,3p' requirements.lock; cat requirements.lock.new; } > requirements.lock.tmp
	rm requirements.lock.new && mv requirements.lock.tmp requirements.lock

clean:
	rm -rf data/raw data/processed data/published models reports .prefect
