#!/usr/bin/env bash
# Creates .venv-torch: a SEPARATE Python 3.11 venv with PyTorch (CPU) and numpy, used only by the
# PyTorch side of `make bench` (benchmarks/torch_*.py run in their own process). Never used by the
# product or by `make test`. The torch wheel comes from the pip find-links (/opt/wheels on these
# machines); TORCH_VERSION overrides the pin. Idempotent: does nothing when the venv already imports torch.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-torch
TORCH_VERSION=${TORCH_VERSION:-2.13.0}

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch, numpy" >/dev/null 2>&1; then
  exit 0
fi

find_python311() {
  if command -v python3.11 >/dev/null 2>&1 && python3.11 -c 'import sys' >/dev/null 2>&1; then
    command -v python3.11; return
  fi
  local root cand
  root=$( (command -v pyenv >/dev/null 2>&1 && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for cand in $(ls -d "$root"/versions/3.11.*/bin/python3.11 2>/dev/null | sort -V -r); do
    if "$cand" -c 'import sys' >/dev/null 2>&1; then echo "$cand"; return; fi
  done
  return 1
}

if ! PY=$(find_python311); then
  echo "error: Python 3.11 not found (python3.11 on PATH or \$(pyenv root)/versions/3.11.*); the PyTorch" \
       "side of the benchmark needs it (torch $TORCH_VERSION CPU wheel for cp311)." >&2
  exit 1
fi
echo "setup_torch_env: creating $VENV with $PY (torch==$TORCH_VERSION, CPU)"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$TORCH_VERSION" numpy pillow
"$VENV/bin/python" -c "import torch; print('setup_torch_env: torch', torch.__version__, 'threads', torch.get_num_threads())"
