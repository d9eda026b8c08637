#!/usr/bin/env bash
# Installs what the tests need (Debian packages, .venv) and runs the whole suite.
# Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
need=()
command -v jackd >/dev/null || need+=(jackd2)
command -v espeak-ng >/dev/null || need+=(espeak-ng)
command -v systemd-analyze >/dev/null || need+=(systemd)
ldconfig -p | grep -q libportaudio.so.2 || need+=(libportaudio2)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "entropi tests: installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${need[@]}" >&2
fi
scripts/setup.sh
export NO_TORCH_COMPILE=1 NO_CUDA_GRAPH=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "entropi tests: no test ran; that is a failure" >&2
  exit 1
fi
exit $rc
