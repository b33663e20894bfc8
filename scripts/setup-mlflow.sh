#!/usr/bin/env bash
# Installs a pinned MLflow tracking server into <repo>/.venv (for the tracking UI and for the
# integration tests of packages/mlflow). Idempotent: does nothing when the pinned version is
# already there. Usage: bash scripts/setup-mlflow.sh   (MLFLOW_VERSION=x.y.z to override the pin)
set -euo pipefail

# The full `mlflow` distribution (mlflow-skinny has no tracking server), with the `auth` extra
# (Flask-WTF) so `mlflow server --app-name basic-auth` works too.
MLFLOW_VERSION="${MLFLOW_VERSION:-3.17.2}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
PYTHON="${PYTHON:-python3}"

installed_version() {
  "${VENV}/bin/python" -c 'import importlib.metadata as m, flask_wtf; print(m.version("mlflow"))' \
    2>/dev/null || true
}

if [[ -x "${VENV}/bin/mlflow" && "$(installed_version)" == "${MLFLOW_VERSION}" ]]; then
  echo "setup-mlflow: mlflow ${MLFLOW_VERSION} already installed in ${VENV}"
  exit 0
fi

if [[ ! -x "${VENV}/bin/python" ]]; then
  echo "setup-mlflow: creating ${VENV}"
  if ! "${PYTHON}" -m venv "${VENV}"; then
    echo "setup-mlflow: '${PYTHON} -m venv' failed; install Python 3.10+ with venv (Debian: apt-get install python3-venv)" >&2
    rm -rf "${VENV}"
    exit 1
  fi
fi

echo "setup-mlflow: installing mlflow==${MLFLOW_VERSION} into ${VENV}"
"${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "mlflow[auth]==${MLFLOW_VERSION}"

# Fail here, not in a test, if the server entry point is missing or broken.
"${VENV}/bin/mlflow" --version
