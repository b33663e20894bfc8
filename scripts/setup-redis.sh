#!/usr/bin/env bash
# Installs redis-server (Debian's package) for the queue executor's integration tests and for
# running a sweep's Redis locally. Idempotent: does nothing when redis-server is already on PATH.
# Usage: scripts/setup-redis.sh        (needs root, or sudo, for apt-get)
set -euo pipefail
# shellcheck source=lib/apt-install.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/apt-install.sh"

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version | head -n1)"
  exit 0
fi

apt_install setup-redis.sh "install redis-server (>= 6.2) with your package manager" redis-server --no-install-recommends
# The package starts a system service on some images; the tests start their own servers on
# free ports, so a running service does no harm, but it is not needed either.
echo "installed: $(redis-server --version | head -n1)"
