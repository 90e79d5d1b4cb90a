#!/usr/bin/env bash
# Accelerator benchmark: installs the accelerator builds of jax and torch into their own venv,
# runs the device tests that matter there, then `python -m benchmarks.gpu`, which writes
# benchmarks/REPORT_gpu.md (device checks, resnet_small 32x32x3 batch 512 vs PyTorch, K-seed
# strategies, time to accuracy on synthetic CIFAR-10-shaped data).
#
#   bash scripts/bench_gpu.sh            # on a GPU (NVIDIA) or TPU host; ~10-15 min
#   DRY_RUN=1 bash scripts/bench_gpu.sh  # print the commands, run nothing
#
# Env: VENV (default .venv-gpu), JAX_EXTRA (default: cuda13 or cuda12 from nvidia-smi's CUDA
# version, tpu on a TPU VM), TORCH_INDEX_URL (default: PyPI, whose Linux torch wheels are CUDA
# builds; e.g. https://download.pytorch.org/whl/cu128), SKIP_TORCH=1, SKIP_TESTS=1.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="${VENV:-.venv-gpu}"
PY="$VENV/bin/python"
JAX_VERSION="$(sed -n 's/^jax==//p' requirements.lock)"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"

run() { echo "+ $*"; [ -n "${DRY_RUN:-}" ] || "$@"; }

if [ -z "${JAX_EXTRA:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    cuda="$(nvidia-smi | sed -n 's/.*CUDA Version: \([0-9]*\).*/\1/p' | head -1)"
    if [ "${cuda:-0}" -ge 13 ]; then JAX_EXTRA=cuda13; else JAX_EXTRA=cuda12; fi
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  elif [ -e /dev/accel0 ] || [ -e /dev/vfio/0 ]; then
    JAX_EXTRA=tpu
  else
    echo "bench_gpu.sh: no GPU (nvidia-smi) or TPU (/dev/accel0) found; run it on an accelerator host" >&2
    [ -n "${DRY_RUN:-}" ] || exit 2
    JAX_EXTRA=cuda12
  fi
fi

[ -x "$PY" ] || run python3 -m venv "$VENV"
run "$PY" -m pip install --quiet --upgrade pip
# The project's pinned stack, then jax's accelerator plugin of the same version on top.
run "$PY" -m pip install --quiet -r requirements.lock
run "$PY" -m pip install --quiet --no-deps -e .
run "$PY" -m pip install --quiet "jax[$JAX_EXTRA]==$JAX_VERSION"
if [ -z "${SKIP_TORCH:-}" ] && [ "$JAX_EXTRA" != tpu ]; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    run "$PY" -m pip install --quiet "torch==$TORCH_VERSION" --index-url "$TORCH_INDEX_URL" ||
      echo "note: torch not installed; no PyTorch rows"
  else
    run "$PY" -m pip install --quiet "torch==$TORCH_VERSION" || echo "note: torch not installed; no PyTorch rows"
  fi
fi
run "$PY" -c "import jax; print('jax', jax.__version__, jax.default_backend(), jax.devices())"
run "$PY" -c "import jax, sys; sys.exit(jax.default_backend() == 'cpu' and 'jax sees no accelerator: check the driver and JAX_EXTRA')"

if [ -z "${SKIP_TESTS:-}" ]; then
  # On the device: train/eval steps, bf16 mixed precision, K-seed strategies, the PyTorch twins.
  run env CNN_JAX_SEED_STRATEGY_CACHE="$(mktemp -d)/s.json" "$PY" -m pytest -q -p no:xdist \
    tests/core/test_steps.py tests/core/test_mixed_precision.py tests/core/test_seed_strategy.py tests/e2e/test_torch_twin.py
fi
# Device checks (sharded step on all devices, bf16, donation, no per-step host sync) and the
# benchmark; exits 1 if a check failed (the report is written either way).
run "$PY" -m benchmarks.gpu --report benchmarks/REPORT_gpu.md
echo "wrote benchmarks/REPORT_gpu.md"
