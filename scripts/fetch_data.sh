#!/usr/bin/env bash
# MNIST and Fashion-MNIST where cnn_jax.datasets looks for them: the installed `cnn-jax-data`
# command (cnn_jax/datasets/download.py), which `make data` runs; kept for old instructions.
#
#   bash scripts/fetch_data.sh [DATA_DIR]   # default: $CNN_JAX_DATA_DIR, else ~/tensorflow_datasets
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$REPO/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m cnn_jax.datasets.download mnist fashion_mnist ${1:+--data-dir "$1"}
