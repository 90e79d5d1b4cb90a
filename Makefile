# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/digits/$(shell date +%Y%m%d-%H%M%S)
PYTEST_ARGS ?=

.PHONY: install run test test-fast lint format data clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.train --config=experiments/configs/digits.py --workdir=$(WORKDIR)

# The suite and every notebook (executed by nbmake), spread over 2 workers.
test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=15 --nbmake tests notebooks $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

data: $(STAMP)
	bash scripts/fetch_data.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
