#!/usr/bin/env bash
# Installs entropi as a systemd service (run as root from the project checkout).
#   scripts/install-service.sh            install + enable (does not start)
#   scripts/install-service.sh --render   print the rendered unit and exit
#   scripts/install-service.sh --render-config   print the /etc/entropi/config.yaml it would write
# Creates the 'entropi' system user, /etc/entropi/{config.yaml,entropi.env} (secrets: HF_TOKEN,
# OPENROUTER_API_KEY; mode 0600), state in /var/lib/entropi, caches in /var/cache/entropi.
set -euo pipefail
home=$(cd "$(dirname "$0")/.." && pwd)
unit=$(sed "s#@ENTROPI_HOME@#$home#g" "$home/scripts/entropi.service")
# State paths must live under ReadWritePaths: rewrite the relative defaults.
render_config() {
  sed -e 's#\./memory/#/var/lib/entropi/memory/#' -e 's#\./state/#/var/lib/entropi/state/#' \
      -e 's#~/.cache/entropi#/var/cache/entropi#' -e "s#\./voices#$home/voices#" \
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
echo "installed: edit /etc/entropi/config.yaml and /etc/entropi/entropi.env, then: systemctl start entropi"
