#!/usr/bin/env bash
# Installs Chromium (Debian's package) for the browser tests of `exp ui`, which drive it headless
# through playwright-core (Playwright's own browser download is not reachable from CI). Idempotent:
# does nothing when /usr/bin/chromium (or $CHROMIUM_BIN) is already there.
# Usage: scripts/setup-chromium.sh        (needs root, or sudo, for apt-get)
set -euo pipefail
# shellcheck source=lib/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

existing="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ -x "$existing" ]; then
  echo "chromium already installed: $("$existing" --version 2>/dev/null | head -n1)"
  exit 0
fi

apt_install setup-chromium.sh "install Chromium with your package manager and set CHROMIUM_BIN" chromium
echo "installed: $(/usr/bin/chromium --version 2>/dev/null | head -n1)"
