#!/usr/bin/env bash
# The device check on a borrowed accelerator machine with no network (docs/accelerators.md):
#   bash scripts/device_check.sh OUT_DIR [--budget-s N] [--allow-cpu] [--wheels DIR] ...
# Runs scripts/device_check.py with the machine's own python3 (DEVICE_PYTHON to choose
# another): it installs .whl/ into /tmp/site, then smoke training, device tests, benchmark.
set -euo pipefail
exec "${DEVICE_PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/device_check.py" "$@"
