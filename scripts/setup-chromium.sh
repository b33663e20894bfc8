#!/usr/bin/env bash
# Installs Chromium (Debian's package) for the browser tests of `exp ui`, which drive it headless
# through playwright-core (Playwright's own browser download is not reachable from CI). Idempotent:
# does nothing when /usr/bin/chromium (or $CHROMIUM_BIN) is already there.
# Usage: scripts/setup-chromium.sh        (needs root, or sudo, for apt-get)
set -euo pipefail

existing="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ -x "$existing" ]; then
  echo "chromium already installed: $("$existing" --version 2>/dev/null | head -n1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-chromium.sh: apt-get not found; install Chromium with your package manager and set CHROMIUM_BIN" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup-chromium.sh: run as root (or install sudo) to apt-get install chromium" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq chromium >/dev/null
echo "installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
