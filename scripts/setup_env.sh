#!/usr/bin/env bash
# Creates .venv with Python 3.10 and installs the pinned working set (requirements.lock) plus this
# package (editable). Called by `make setup`; make skips it when the lock and setup.py are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8

find_python() {
  # python3.10 on PATH (a pyenv shim may exist without the version being selected: run it to be sure)
  if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys' >/dev/null 2>&1; then
    command -v python3.10; return
  fi
  local root
  root=$( (command -v pyenv >/dev/null 2>&1 && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  local cand
  for cand in $(ls -d "$root"/versions/3.10.*/bin/python3.10 2>/dev/null | sort -V -r); do
    if "$cand" -c 'import sys' >/dev/null 2>&1; then echo "$cand"; return; fi
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  if ! PY=$(find_python); then
    cat >&2 <<'MSG'
error: Python 3.10 not found.
  TFX 1.16 (the newest TFX that runs on glibc 2.36 / GCC 12) needs Python 3.10.
  Looked for `python3.10` on PATH and for $(pyenv root)/versions/3.10.*/bin/python3.10.
  Install one (for example `pyenv install 3.10.13`, or your distribution's python3.10) and rerun `make setup`.
MSG
    exit 1
  fi
  echo "setup: creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "setup: installing the pinned set (requirements.lock)"
# --compile-bytecode: every process (each Beam worker, each test subprocess) would otherwise compile
# TF/TFX from source at import, 15 s instead of 6 s, whenever the .pyc files cannot be written.
VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip sync --quiet --compile-bytecode requirements.lock
VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --quiet --compile-bytecode --no-deps -e .
echo "setup: done ($(.venv/bin/python --version))"
