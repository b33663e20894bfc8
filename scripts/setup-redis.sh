#!/usr/bin/env bash
# Installs redis-server (Debian's package) for the queue executor's integration tests and for
# running a sweep's Redis locally. Idempotent: does nothing when redis-server is already on PATH.
# Usage: scripts/setup-redis.sh        (needs root, or sudo, for apt-get)
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  echo "redis-server already installed: $(redis-server --version | head -n1)"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-redis.sh: apt-get not found; install redis-server (>= 6.2) with your package manager" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup-redis.sh: run as root (or install sudo) to apt-get install redis-server" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package starts a system service on some images; the tests start their own servers on
# free ports, so a running service does no harm, but it is not needed either.
echo "installed: $(redis-server --version | head -n1)"
