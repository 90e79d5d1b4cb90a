# Two commands do all the set-up on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
WORKDIR ?= runs/digits/$(shell date +%Y%m%d-%H%M%S)
PYTEST_ARGS ?=
BENCH_ARGS ?=
# Debian's tcmalloc: the run path preloads it when present (cnn_jax/system/runtime.py). Installed only
# as root and never fatal: without it everything runs on glibc's malloc, slower.
TCMALLOC_PKG := libtcmalloc-minimal4
# The CPU convolutions' oneDNN (the `onednn` extra of pyproject.toml, same pins), installed
# without dependencies so that the locked environment stays as it is.
ONEDNN_PKGS := onednn-cpu-gomp==2023.2.0 onednn-devel-cpu-gomp==2023.2.0

.PHONY: install run test test-fast test-py312 test-py313 lint format data bench bench-gpu \
	device-wheels readme clean

$(STAMP): requirements.lock pyproject.toml cnn_jax/nn/onednn/conv_handlers.cc
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	@# The optional oneDNN convolutions (cnn_jax/nn/onednn): one line, never fatal.
	@$(PY) -m pip install --quiet --retries 2 --no-deps $(ONEDNN_PKGS) >/dev/null 2>&1; \
		$(PY) -m cnn_jax.nn.onednn.build || true
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! dpkg -s $(TCMALLOC_PKG) >/dev/null 2>&1; then \
		apt-get install -y -qq $(TCMALLOC_PKG) >/dev/null 2>&1 || \
		(apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(TCMALLOC_PKG) >/dev/null 2>&1) || \
		echo "note: $(TCMALLOC_PKG) not installed; running on glibc malloc (slower)"; fi
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m experiments.train --config=experiments/configs/digits.py --workdir=$(WORKDIR)

# The suite and every notebook (executed by nbmake), spread over 2 workers.
test: $(STAMP)
	$(PY) -m pytest -n 2 --durations=40 --nbmake --nbmake-timeout=900 tests notebooks $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests $(PYTEST_ARGS)

# The fast suite on Python 3.12 / 3.13 with another jax (JAX=0.11.2, 0.12.0.1 or newest), in a
# venv of its own (.venv-py312-jax$(JAX)); docs/accelerators.md has the measured results.
JAX ?= 0.11.2
test-py312:
	bash scripts/test_python.sh 3.12 $(JAX)

test-py313:
	bash scripts/test_python.sh 3.13 $(JAX)

lint: $(STAMP)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

data: $(STAMP)
	$(VENV)/bin/cnn-jax-data mnist fashion_mnist

# Benchmarks -> benchmarks/REPORT.md. PyTorch is a benchmark-only extra (not in requirements.lock).
bench: $(STAMP)
	$(PY) -m pip install --quiet torch==2.13.0 || echo "note: torch not installed; no PyTorch rows"
	$(PY) -m benchmarks.run $(BENCH_ARGS)

# README result blocks regenerated from results/ (never typed by hand); `--check` is a test.
readme: $(STAMP)
	$(PY) -m cnn_jax.runs.readme_blocks

# On a GPU machine with no network (docs/accelerators.md): the wheels from `make device-wheels`
# on top of its own jax and torch, then smoke training, device tests and benchmarks/gpu.py,
# each phase's output in $(DEVICE_OUT) as soon as it ends, within DEVICE_BUDGET seconds.
DEVICE_OUT ?= $(or $(OUT),/tmp/cnn_jax-device-check)
DEVICE_BUDGET ?= 480
DEVICE_ARGS ?=
bench-gpu:
	bash scripts/device_check.sh $(DEVICE_OUT) --budget-s $(DEVICE_BUDGET) $(DEVICE_ARGS)

# On a networked machine: the wheels the GPU machine lacks (Python 3.12, manylinux x86_64) -> .whl/
device-wheels: $(STAMP)
	$(PY) scripts/device_wheels.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
