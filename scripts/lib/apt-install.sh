# Sourced by the setup scripts of system packages (setup-redis.sh, setup-chromium.sh): one way to
# apt-get install a Debian package, as root or through sudo, with a clear message where neither works.
# Usage: apt_install SCRIPT_NAME HINT PACKAGE [apt-get install options...]
apt_install() {
  local script="$1" hint="$2" package="$3"
  shift 3
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "${script}: apt-get not found; ${hint}" >&2
    return 1
  fi
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
      echo "${script}: run as root (or install sudo) to apt-get install ${package}" >&2
      return 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq "$@" "${package}" >/dev/null
}
