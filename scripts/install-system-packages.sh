#!/usr/bin/env bash
# Installs the Debian packages in scripts/system-packages.txt that are missing (as root, or
# through sudo). The one place system tools come from: tests check that every program they
# or the scripts call is listed there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
need=()
while read -r pkg probe arg1 arg2; do
  case "$pkg" in ''|'#'*) continue ;; esac
  case "$probe $arg1" in
    "command -v") command -v "$arg2" >/dev/null && continue ;;
    ldconfig\ *) ldconfig -p | grep -q "$arg1" && continue ;;
    *) echo "system-packages.txt: bad probe '$probe $arg1 $arg2' for $pkg" >&2; exit 2 ;;
  esac
  [[ " ${need[*]-} " == *" $pkg "* ]] || need+=("$pkg")
done < "$root/scripts/system-packages.txt"
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "entropi: installing Debian packages: ${need[*]}" >&2
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends \
    "${need[@]}" >&2
fi
