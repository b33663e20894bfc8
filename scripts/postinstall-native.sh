#!/usr/bin/env bash
# Root postinstall of `pnpm install`: builds the native TensorFlow backend (scripts/setup-tensorflow.sh)
# when this machine can, so a fresh clone trains on it. It never fails the install: when it cannot
# build (no compiler, no pip, offline, a failed build) it prints ONE line saying why, that training
# uses the WebAssembly backend, and how to retry. Quiet when the backend is already built.
#   TESSERA_SKIP_NATIVE=1   skip (e.g. a CI step that builds it itself)
#   TESSERA_TFJS_NODE_DIR   where tfjs-node is (default: resolved from packages/core; tests point it elsewhere)
set -u
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TESSERA_CACHE:-${HOME}/.cache/tessera}"
PYTHON="${PYTHON:-python3}"
RETRY="then run \`pnpm setup:tensorflow\`"

if [[ "${TESSERA_SKIP_NATIVE:-}" == 1 ]]; then
  echo "tessera: native backend not built (TESSERA_SKIP_NATIVE=1); training uses wasm. To build it: pnpm setup:tensorflow"
  exit 0
fi

tfjs_node="${TESSERA_TFJS_NODE_DIR:-$(cd "${REPO_ROOT}/packages/core" 2>/dev/null && node -p \
  "require('path').dirname(require.resolve('@tensorflow/tfjs-node/package.json'))" 2>/dev/null)}"
if [[ -z "${tfjs_node}" || ! -f "${tfjs_node}/package.json" ]]; then
  echo "tessera: native backend not built: @tensorflow/tfjs-node is not installed (an optional dependency that failed?); training uses wasm. Retry: pnpm install, $RETRY"
  exit 0
fi
# Already built for this install (the addon and setup-tensorflow's version marker are there).
if [[ -f "${tfjs_node}/deps/TESSERA_TF_VERSION" ]] && ls "${tfjs_node}"/lib/napi-v*/tfjs_binding.node >/dev/null 2>&1; then
  exit 0
fi

missing=()
for tool in g++ make unzip nm; do command -v "${tool}" >/dev/null 2>&1 || missing+=("${tool}"); done
command -v "${PYTHON}" >/dev/null 2>&1 || missing+=("${PYTHON}")
if command -v "${PYTHON}" >/dev/null 2>&1 && ! "${PYTHON}" -m pip --version >/dev/null 2>&1; then missing+=("pip (${PYTHON} -m pip)"); fi
if ((${#missing[@]} > 0)); then
  printf -v list '%s, ' "${missing[@]}"
  echo "tessera: native backend not built: no ${list%, } on PATH; training uses the slower wasm backend. To build it: install them (Debian: apt-get install g++ make unzip binutils python3-pip), $RETRY"
  exit 0
fi

mkdir -p "${CACHE}"
log="${CACHE}/setup-tensorflow.log"
echo "tessera: building the native TensorFlow backend (pnpm setup:tensorflow; the first time downloads the tensorflow-cpu wheel from PyPI, then ~30 s; log: ${log}; skip with TESSERA_SKIP_NATIVE=1)"
if bash "${REPO_ROOT}/scripts/setup-tensorflow.sh" >"${log}" 2>&1; then
  echo "tessera: $(grep -o "backend 'tensorflow'.*ready" "${log}" | tail -n1 || echo 'native backend ready')"
else
  why="$(grep -m1 'error:' "${log}" | sed 's/^setup-tensorflow: error: //' || true)"
  echo "tessera: native backend build failed (${why:-see ${log}}); training uses wasm. Fix that, $RETRY (log: ${log})"
fi
exit 0
