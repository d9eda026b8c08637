#!/usr/bin/env bash
# Installs entropi as a systemd service (run as root from the project checkout).
#   scripts/install-service.sh            install + enable (does not start)
#   scripts/install-service.sh --render   print the rendered unit and exit
#   scripts/install-service.sh --render-config   print the /etc/entropi/config.yaml it would write
# Creates the 'entropi' system user, /etc/entropi/{config.yaml,entropi.env} (secrets: HF_TOKEN,
# OPENROUTER_API_KEY; mode 0600), state in /var/lib/entropi, caches in /var/cache/entropi,
# links /usr/local/bin/entropi (which finds /etc/entropi/config.yaml by itself) and runs
# check-config as the service user. The installed config is headless: callers reach it through
# the websocket server and its page on 127.0.0.1 (a server has no microphone).
set -euo pipefail
home=$(cd "$(dirname "$0")/.." && pwd)
unit=$(sed "s#@ENTROPI_HOME@#$home#g" "$home/scripts/entropi.service")
# State paths must live under ReadWritePaths: rewrite the relative defaults.
render_config() {
  sed -e 's#\./memory/#/var/lib/entropi/memory/#' -e 's#\./state/#/var/lib/entropi/state/#' \
      -e 's#~/.cache/entropi#/var/cache/entropi#' -e "s#\./voices#$home/voices#" \
      -e 's#^  input: device   #  input: websocket#' -e 's#^  output: device   #  output: websocket#' \
      "$home/config.yaml"
}
case "${1:-}" in
  --render) printf '%s\n' "$unit"; exit 0 ;;
  --render-config) render_config; exit 0 ;;
  "") ;;
  *) echo "install-service: unknown option '$1' (use --render or --render-config)" >&2; exit 2 ;;
esac
[ "$(id -u)" -eq 0 ] || { echo "install-service: run as root" >&2; exit 1; }
"$home/scripts/setup.sh"
id entropi >/dev/null 2>&1 || useradd --system --home /var/lib/entropi --shell /usr/sbin/nologin \
  --groups audio,video entropi
install -d -m 0700 -o entropi -g entropi /var/lib/entropi /var/cache/entropi
install -d -m 0750 -o root -g entropi /etc/entropi
if [ ! -f /etc/entropi/config.yaml ]; then
  render_config > /etc/entropi/config.yaml
  chmod 0640 /etc/entropi/config.yaml; chgrp entropi /etc/entropi/config.yaml
fi
if [ ! -f /etc/entropi/entropi.env ]; then
  printf 'HF_TOKEN=\n# OPENROUTER_API_KEY=\n' > /etc/entropi/entropi.env
  chmod 0600 /etc/entropi/entropi.env
fi
printf '%s\n' "$unit" > /etc/systemd/system/entropi.service
systemd-analyze verify /etc/systemd/system/entropi.service
systemctl daemon-reload
systemctl enable entropi.service
ln -sfn "$home/.venv/bin/entropi" /usr/local/bin/entropi  # `entropi status` from any shell
# The service's own view of the config: its user, its cache, its secrets.
check=(sudo -u entropi env HF_HOME=/var/cache/entropi/huggingface)
if ! "${check[@]}" "$home/.venv/bin/entropi" check-config --config /etc/entropi/config.yaml >/dev/null; then
  echo "install-service: /etc/entropi/config.yaml does not pass check-config (above); fix it" >&2
  exit 1
fi
echo "installed. Next:"
echo "  1. put HF_TOKEN (and OPENROUTER_API_KEY if used) in /etc/entropi/entropi.env"
echo "  2. fetch the models before the first start (~19 GB; the start timeout is 15 min):"
echo "     sudo -u entropi env HF_HOME=/var/cache/entropi/huggingface HF_TOKEN=hf_... entropi fetch"
echo "  3. systemctl start entropi; entropi status; the page: http://127.0.0.1:8998/"
