#!/usr/bin/env bash
# The fast suite on another Python and jax: a venv of its own, the project installed with the
# given jax and everything else pinned by requirements.lock where the pins fit that jax.
#
#   bash scripts/test_python.sh 3.12 0.11.2     # = make test-py312 JAX=0.11.2
#   bash scripts/test_python.sh 3.12 newest     # the newest jax the registry has for 3.12
#
# The venv is .venv-py<ver>-jax<version> (ignored; reused when its install finished). Python
# comes from pyenv (`pyenv root`/versions/<ver>.*), else python<ver> on PATH. Env:
# PYTEST_ARGS (appended to `pytest -n 2 -m "not slow" tests`). Prints the versions, pytest's
# closing line and the wall time of the test run; exits with pytest's code.
set -euo pipefail

die() { echo "test_python.sh: $*" >&2; exit 2; }
[ $# -eq 2 ] || die "usage: test_python.sh PYTHON_VERSION JAX_VERSION|newest (e.g. 3.12 0.11.2)"
PYVER="$1"
JAX="$2"
[[ "$PYVER" =~ ^3\.[0-9]+$ ]] || die "Python version '$PYVER' not allowed; allowed: 3.N (e.g. 3.12)"
[[ "$JAX" == newest || "$JAX" =~ ^[0-9]+(\.[0-9]+)+$ ]] ||
  die "jax version '$JAX' not allowed; allowed: newest or N.N.N (e.g. 0.11.2)"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

find_python() {
  local root found=""
  if command -v pyenv >/dev/null 2>&1 && root="$(pyenv root 2>/dev/null)"; then
    found="$(ls -d "$root"/versions/"$PYVER".*/bin/python 2>/dev/null | sort -V | tail -1 || true)"
  fi
  [ -n "$found" ] || found="$(command -v "python$PYVER" || true)"
  [ -n "$found" ] || die "no Python $PYVER found (pyenv install $PYVER, or put python$PYVER on PATH)"
  echo "$found"
}

PYTHON="$(find_python)"
VENV="$REPO/.venv-py${PYVER//./}-jax$JAX"
PY="$VENV/bin/python"
STAMP="$VENV/.installed"

install() {
  [ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
  "$PY" -m pip install -q --upgrade pip
  local spec=(jax jaxlib) upgrade=(--upgrade)
  [ "$JAX" = newest ] || { spec=("jax==$JAX" "jaxlib==$JAX"); upgrade=(); }
  # The lock's pins except jax's; where they cannot hold with this jax, the rest resolves anew.
  grep -v -E '^(jax|jaxlib)==' requirements.lock >"$VENV/constraints.txt"
  if ! "$PY" -m pip install -q "${upgrade[@]}" -e ".[dev]" "${spec[@]}" -c "$VENV/constraints.txt"; then
    echo "note: requirements.lock's pins do not fit jax $JAX on Python $PYVER; resolving afresh"
    "$PY" -m pip install -q "${upgrade[@]}" -e ".[dev]" "${spec[@]}"
  fi
  touch "$STAMP"
}

[ -f "$STAMP" ] && [ "$JAX" != newest ] || install
"$PY" - <<'EOF'
import platform, importlib.metadata as md
names = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "tensorflow-datasets")
print(f"Python {platform.python_version()}; " + ", ".join(f"{n} {md.version(n)}" for n in names))
EOF
start=$SECONDS
set +e
# shellcheck disable=SC2086  # PYTEST_ARGS is a list of arguments
"$PY" -m pytest -n 2 -m "not slow" -q -p no:cacheprovider tests ${PYTEST_ARGS:-}
rc=$?
set -e
echo "fast suite on Python $PYVER, jax $JAX: exit $rc, $((SECONDS - start)) s wall"
exit $rc
