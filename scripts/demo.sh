#!/usr/bin/env bash
# Sets up .venv if needed, then runs the daemon on the demo profile (tiny model, WAV in/out,
# embedded LLM) for a few windows and prints where the output went.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
export NO_TORCH_COMPILE=1
exec .venv/bin/entropi run --config config.demo.yaml --max-windows "${DEMO_WINDOWS:-4}" "$@"
