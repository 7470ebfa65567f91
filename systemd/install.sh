#!/usr/bin/env bash
# Install or remove the edge agent and collector as systemd services.
#
#   systemd/install.sh install   [--destdir DIR] [--no-venv] [--no-systemctl]
#   systemd/install.sh uninstall [--destdir DIR] [--purge] [--no-systemctl]
#
# install: a venv under /opt/edge-agent/venv with this project installed, the units in
# /etc/systemd/system, a default config in /etc/edge-agent/agent.toml (kept if present).
# The services run as a dynamic unprivileged user (DynamicUser=yes); data lives in
# /var/lib/edge-agent and /var/lib/edge-collector (StateDirectory).
# uninstall keeps the data and the config unless --purge is given.
set -euo pipefail

action=${1:-}
shift || true
destdir=""
venv=1
systemctl=1
purge=0
while [ $# -gt 0 ]; do
  case "$1" in
    --destdir) destdir=$2; shift 2 ;;
    --no-venv) venv=0; shift ;;
    --no-systemctl) systemctl=0; shift ;;
    --purge) purge=1; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

src=$(cd "$(dirname "$0")/.." && pwd)
prefix="$destdir/opt/edge-agent"
units="$destdir/etc/systemd/system"
conf="$destdir/etc/edge-agent"
has_systemctl() { [ "$systemctl" = 1 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }

case "$action" in
  install)
    mkdir -p "$prefix" "$units" "$conf" "$destdir/etc/edge-collector"
    if [ "$venv" = 1 ]; then
      python3 -m venv "$prefix/venv"
      "$prefix/venv/bin/pip" install -q --upgrade pip
      "$prefix/venv/bin/pip" install -q "$src"
    fi
    install -m 0644 "$src/systemd/edge-agent.service" "$src/systemd/edge-collector.service" "$units/"
    install -m 0644 "$src/README.md" "$prefix/README.md"
    if [ ! -e "$conf/agent.toml" ]; then
      sed -e 's|^data_dir = .*|data_dir = "/var/lib/edge-agent"|' "$src/examples/plant.toml" > "$conf/agent.toml"
      chmod 0640 "$conf/agent.toml"
      echo "wrote a default config to $conf/agent.toml: edit the devices and the collector, then"
    fi
    if has_systemctl; then
      systemctl daemon-reload
      echo "run: systemctl enable --now edge-agent"
    fi
    echo "installed into $prefix"
    ;;
  uninstall)
    if has_systemctl; then
      systemctl disable --now edge-agent edge-collector 2>/dev/null || true
    fi
    rm -f "$units/edge-agent.service" "$units/edge-collector.service"
    rm -rf "$prefix"
    if [ "$purge" = 1 ]; then
      rm -rf "$conf" "$destdir/etc/edge-collector" "$destdir/var/lib/edge-agent" "$destdir/var/lib/edge-collector"
      echo "removed the program, the config and the data"
    else
      echo "removed the program; kept $conf and /var/lib/edge-agent (use --purge to remove them)"
    fi
    if has_systemctl; then systemctl daemon-reload; fi
    ;;
  *)
    echo "usage: systemd/install.sh install|uninstall [--destdir DIR] [--no-venv] [--no-systemctl] [--purge]" >&2
    exit 2
    ;;
esac
