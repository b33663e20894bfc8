#!/usr/bin/env bash
# Builds Tessera's native backend (@tensorflow/tfjs-node) WITHOUT the TensorFlow CDN.
#
# tfjs-node's own install script downloads libtensorflow from storage.googleapis.com, which is
# unreachable where only package registries are (and pnpm never runs that script here: see
# allowBuilds in pnpm-workspace.yaml). Since TensorFlow 2.12 the PyPI wheel ships the C and eager
# C APIs in tensorflow/libtensorflow_cc.so.2, which is all the tfjs-node binding uses. So:
#   1. pip download the wheel (cached under $TESSERA_CACHE/wheels),
#   2. extract the two shared libraries and the headers (cached under $TESSERA_CACHE/tf-<version>),
#   3. check the library exports every TF_/TFE_ symbol the binding calls,
#   4. link them into tfjs-node's deps/ and compile the addon with node-gyp (no network),
#   5. compile Tessera's fused kernels (TensorFlow custom ops, packages/core/src/backend/kernels/*/native.cc),
#   6. load it in Node and check TF_Version, a matMul, a gradient, a tiny fit and the fused ops.
# Idempotent: with everything cached it only recompiles the addon and the ops (~25 s).
#
# Usage: pnpm setup:tensorflow           (= bash scripts/setup-tensorflow.sh)
#   TESSERA_TF_VERSION=2.12.1   which tensorflow-cpu wheel to use (see docs/performance.md)
#   TESSERA_CACHE=~/.cache/tessera
#   PYTHON=python3              the interpreter whose pip downloads the wheel
# See docs/performance.md for what was tried and why this version.
set -euo pipefail

TF_VERSION="${TESSERA_TF_VERSION:-2.19.1}"
CACHE="${TESSERA_CACHE:-${HOME}/.cache/tessera}"
PYTHON="${PYTHON:-python3}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The binding calls these (grep of binding/*.cc in tfjs-node 4.22.0); a wheel lacking any is unusable.
REQUIRED_SYMBOLS="TF_AllocateTensor TF_DataTypeSize TF_DeleteBuffer TF_DeleteDeviceList TF_DeleteGraph
TF_DeleteSession TF_DeleteSessionOptions TF_DeleteStatus TF_DeleteTensor TF_DeviceListCount
TF_DeviceListName TF_DeviceListType TF_Dim TF_GetCode TF_GraphOperationByName
TF_LoadSessionFromSavedModel TF_Message TF_NewBuffer TF_NewBufferFromString TF_NewGraph
TF_NewSessionOptions TF_NewStatus TF_NewTensor TF_NumDims TF_SessionRun TF_TensorByteSize
TF_TensorData TF_TensorElementCount TF_TensorType TF_Version TFE_ContextListDevices
TFE_DeleteContext TFE_DeleteContextOptions TFE_DeleteOp TFE_DeleteTensorHandle TFE_Execute
TFE_NewContext TFE_NewContextOptions TFE_NewOp TFE_NewTensorHandle TFE_OpAddInput
TFE_OpSetAttrBool TFE_OpSetAttrBoolList TFE_OpSetAttrFloat TFE_OpSetAttrFloatList TFE_OpSetAttrInt
TFE_OpSetAttrIntList TFE_OpSetAttrShape TFE_OpSetAttrString TFE_OpSetAttrType
TFE_TensorHandleCopyToDevice TFE_TensorHandleDataType TFE_TensorHandleDim TFE_TensorHandleNumDims
TFE_TensorHandleResolve"

started=$SECONDS
say() { printf 'setup-tensorflow [%3ds]: %s\n' "$((SECONDS - started))" "$*"; }
fail() { printf 'setup-tensorflow: error: %s\n' "$*" >&2; exit 1; }

for tool in unzip nm make g++; do
  command -v "${tool}" >/dev/null || fail "\`${tool}\` is needed (Debian: apt-get install unzip binutils build-essential)"
done

# --- 0. where tfjs-node is (an optional dependency of @tessera/core) ------------------------------
TFJS_NODE="${TESSERA_TFJS_NODE_DIR:-}"
[[ -n "${TFJS_NODE}" ]] || TFJS_NODE="$(cd "${REPO_ROOT}/packages/core" && node -p \
  "require('path').dirname(require.resolve('@tensorflow/tfjs-node/package.json'))" 2>/dev/null)" ||
  fail "@tensorflow/tfjs-node is not installed; run \`pnpm install\` first (it is an optional dependency of @tessera/core)"
TFJS_NODE="$(cd "${TFJS_NODE}" && pwd -P)"
# The path node-pre-gyp (and so tfjs-node at load time) looks for: lib/napi-v<N>/tfjs_binding.node.
BINDING="$(cd "${TFJS_NODE}" && node -p \
  "require('@mapbox/node-pre-gyp').find(require('path').resolve('package.json'))" 2>/dev/null)" ||
  fail "${TFJS_NODE} has no @mapbox/node-pre-gyp beside it; is it an installed @tensorflow/tfjs-node? (run \`pnpm install\`)"
NAPI_VERSION="$(basename "$(dirname "${BINDING}")")"; NAPI_VERSION="${NAPI_VERSION#napi-v}"
say "tfjs-node at ${TFJS_NODE} (addon: napi-v${NAPI_VERSION})"

# --- 1. the wheel ----------------------------------------------------------------------------------
mkdir -p "${CACHE}/wheels"
wheel="$(ls "${CACHE}/wheels"/tensorflow_cpu-"${TF_VERSION}"-*.whl 2>/dev/null | head -n1 || true)"
if [[ -z "${wheel}" ]]; then
  say "downloading tensorflow-cpu==${TF_VERSION} from PyPI"
  "${PYTHON}" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    "tensorflow-cpu==${TF_VERSION}" -d "${CACHE}/wheels" ||
    fail "pip could not download tensorflow-cpu==${TF_VERSION} (is PyPI reachable? is there a wheel for $(${PYTHON} -V)?)"
  wheel="$(ls "${CACHE}/wheels"/tensorflow_cpu-"${TF_VERSION}"-*.whl | head -n1)"
fi
say "wheel ${wheel##*/}"

# --- 2. extract libraries and headers --------------------------------------------------------------
TF_DIR="${CACHE}/tf-${TF_VERSION}/tensorflow"
if [[ ! -f "${TF_DIR}/.complete" ]]; then
  say "extracting libtensorflow_cc.so.2, libtensorflow_framework.so.2 and headers"
  rm -rf "${CACHE}/tf-${TF_VERSION}"
  mkdir -p "${CACHE}/tf-${TF_VERSION}"
  unzip -l "${wheel}" tensorflow/libtensorflow_cc.so.2 tensorflow/libtensorflow_framework.so.2 >/dev/null 2>&1 ||
    fail "the wheel has no tensorflow/libtensorflow_cc.so.2 (TensorFlow < 2.12 keeps the C API inside the Python extension)"
  unzip -q -o "${wheel}" 'tensorflow/libtensorflow_cc.so.2' 'tensorflow/libtensorflow_framework.so.2' \
    'tensorflow/include/*' -d "${CACHE}/tf-${TF_VERSION}"
  chmod +x "${TF_DIR}"/lib*.so.2
  touch "${TF_DIR}/.complete"
fi
[[ -f "${TF_DIR}/include/tensorflow/c/c_api.h" && -f "${TF_DIR}/include/tensorflow/c/eager/c_api.h" ]] ||
  fail "the wheel's include/ lacks tensorflow/c/c_api.h or tensorflow/c/eager/c_api.h"

# --- 3. the C API the binding needs ---------------------------------------------------------------
# Symbols may carry a version tag (TF_Version@@tensorflow); strip it before comparing.
missing="$(comm -23 <(tr -s ' \n' '\n\n' <<<"${REQUIRED_SYMBOLS}" | sort -u) \
  <(nm -D --defined-only "${TF_DIR}/libtensorflow_cc.so.2" "${TF_DIR}/libtensorflow_framework.so.2" 2>/dev/null |
    awk '{print $3}' | sed 's/@.*//' | sort -u) | tr '\n' ' ')"
[[ -z "${missing}" ]] || fail "tensorflow-cpu ${TF_VERSION}'s libraries do not export: ${missing}"
say "all $(wc -w <<<"${REQUIRED_SYMBOLS}") TF_/TFE_ symbols the binding uses are exported"

# --- 4. deps/ and the addon -----------------------------------------------------------------------
# Hard links when the cache is on the same file system (no 600 MB copy), copies otherwise.
rm -rf "${TFJS_NODE}/deps" "${TFJS_NODE}/build"
mkdir -p "${TFJS_NODE}/deps/lib"
cp -al "${TF_DIR}/include" "${TFJS_NODE}/deps/include" 2>/dev/null || cp -a "${TF_DIR}/include" "${TFJS_NODE}/deps/include"
for lib in libtensorflow_cc.so.2 libtensorflow_framework.so.2; do
  ln "${TF_DIR}/${lib}" "${TFJS_NODE}/deps/lib/${lib}" 2>/dev/null || cp "${TF_DIR}/${lib}" "${TFJS_NODE}/deps/lib/${lib}"
done
# binding.gyp links with -ltensorflow -ltensorflow_framework; the NEEDED entries recorded are the
# sonames (libtensorflow_cc.so.2, libtensorflow_framework.so.2), found through RUNPATH deps/lib.
ln -sf libtensorflow_cc.so.2 "${TFJS_NODE}/deps/lib/libtensorflow.so"
ln -sf libtensorflow_framework.so.2 "${TFJS_NODE}/deps/lib/libtensorflow_framework.so"
printf '%s\n' "${TF_VERSION}" >"${TFJS_NODE}/deps/TESSERA_TF_VERSION"

node_gyp=""
for candidate in "$(npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js" \
                 "$(dirname "$(command -v npm 2>/dev/null || echo /nonexistent)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"; do
  [[ -f "${candidate}" ]] && { node_gyp="${candidate}"; break; }
done
[[ -n "${node_gyp}" ]] || command -v node-gyp >/dev/null || fail "node-gyp not found (it ships with npm; or: npm i -g node-gyp)"
# Node's own headers, so node-gyp does not try to download them.
node_prefix="$(node -p "require('path').resolve(process.execPath, '..', '..')")"
nodedir_flag=()
[[ -f "${node_prefix}/include/node/node_api.h" ]] && nodedir_flag=("--nodedir=${node_prefix}")
say "compiling the addon with node-gyp ${nodedir_flag[*]:-}"
(cd "${TFJS_NODE}" && ${node_gyp:+node "${node_gyp}"} ${node_gyp:-node-gyp} rebuild "${nodedir_flag[@]}" \
  --module_name=tfjs_binding --module_path="$(dirname "${BINDING}")" --napi_build_version="${NAPI_VERSION}" \
  --jobs="$(nproc)" >"${CACHE}/node-gyp.log" 2>&1) ||
  { tail -n 30 "${CACHE}/node-gyp.log" >&2; fail "node-gyp failed (full log: ${CACHE}/node-gyp.log)"; }
[[ -f "${BINDING}" ]] || fail "node-gyp finished but ${BINDING} is missing"

# --- 5. the fused kernels ----------------------------------------------------------------------------
# One library that is both TensorFlow custom ops and a Node addon: require() dlopens it into the
# TensorFlow tfjs-node loaded, which registers the ops (packages/core/src/backend/kernels/native.ts).
# -march=native: it is compiled where it runs. The ABI and Eigen alignment flags are the wheel's
# (tf.sysconfig.get_compile_flags()); a mismatch corrupts memory rather than failing to link.
KERNELS_DIR="${REPO_ROOT}/packages/core/src/backend/kernels"
OPS_LIBRARY="${KERNELS_DIR}/build/fused-kernels.node"
# Each kernel's ops in its folder (kernels/<kernel>/native.cc), and the addon entry they share.
OPS_SOURCES=("${KERNELS_DIR}/native-addon.cc" "${KERNELS_DIR}"/*/native.cc)
node_include=""
for candidate in "${node_prefix}/include/node" "${HOME}/.cache/node-gyp/$(node -p 'process.versions.node')/include/node"; do
  [[ -f "${candidate}/node_api.h" ]] && { node_include="${candidate}"; break; }
done
[[ -n "${node_include}" ]] || fail "Node's headers (node_api.h) are in neither ${node_prefix}/include/node nor node-gyp's cache"
say "compiling the fused kernels (${KERNELS_DIR#"${REPO_ROOT}/"}: ${OPS_SOURCES[*]#"${KERNELS_DIR}/"})"
mkdir -p "${KERNELS_DIR}/build"
g++ -std=c++17 -shared -fPIC -O3 -march=native -w -D_GLIBCXX_USE_CXX11_ABI=1 -DEIGEN_MAX_ALIGN_BYTES=64 \
  -I"${TF_DIR}/include" -I"${node_include}" "${OPS_SOURCES[@]}" -o "${OPS_LIBRARY}.tmp" \
  -L"${TF_DIR}" -l:libtensorflow_framework.so.2 -Wl,-rpath,"${TFJS_NODE}/deps/lib" >"${CACHE}/fused-kernels.log" 2>&1 ||
  { tail -n 30 "${CACHE}/fused-kernels.log" >&2; fail "compiling the fused kernels failed (full log: ${CACHE}/fused-kernels.log)"; }
mv -f "${OPS_LIBRARY}.tmp" "${OPS_LIBRARY}"

# --- 6. verify ----------------------------------------------------------------------------------------
say "verifying the backend"
(cd "${REPO_ROOT}/packages/core" && TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}" node - "${TF_VERSION}" "${OPS_LIBRARY}" <<'JS'
const expected = process.argv[2];
const tf = require('@tensorflow/tfjs-node');
const check = (ok, what) => { if (!ok) { console.error(`verify: ${what}`); process.exit(1); } };
check(tf.getBackend() === 'tensorflow', `backend is ${tf.getBackend()}, expected tensorflow`);
const libVersion = tf.backend().binding.TF_Version;
check(libVersion === expected, `TF_Version is ${libVersion}, expected ${expected}`);
const product = tf.tensor2d([[1, 2], [3, 4]]).matMul(tf.tensor2d([[5, 6], [7, 8]])).arraySync();
check(JSON.stringify(product) === '[[19,22],[43,50]]', `matMul gave ${JSON.stringify(product)}`);
const gradient = tf.grad((x) => x.square().sum())(tf.tensor1d([1, 2, 3])).arraySync();
check(JSON.stringify(gradient) === '[2,4,6]', `gradient of sum(x^2) gave ${JSON.stringify(gradient)}`);
// A tiny fit: a linear model must learn y = 2x - 1 well below its starting loss.
const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
const x = tf.linspace(-1, 1, 32).reshape([32, 1]);
model.fit(x, x.mul(2).sub(1), { epochs: 100, verbose: 0 }).then((history) => {
  const loss = history.history.loss;
  check(loss.at(-1) < 1e-3 && loss.at(-1) < loss[0], `fit loss ${loss[0]} -> ${loss.at(-1)}`);
  // The fused ops, on values worked out by hand (gelu(1) = Phi(1), gelu'(0) = 1/2; a row [1, 3]
  // has mean 2, rstd 1/sqrt(1 + eps)); kernels/native.native.test.ts checks them thoroughly.
  require(process.argv[3]);
  const backend = tf.backend();
  const [gelu, slope] = backend.executeMultipleOutputs('TesseraGeluExact', [], [tf.tensor1d([1, 0])], 2);
  const close = (a, b) => a.every((v, i) => Math.abs(v - b[i]) < 1e-5);
  check(close(gelu.dataSync(), [0.8413447, 0]) && close(slope.dataSync(), [1.0833155, 0.5]), `TesseraGeluExact gave ${gelu.dataSync()}, ${slope.dataSync()}`);
  const epsilon = { name: 'epsilon', type: backend.binding.TF_ATTR_FLOAT, value: 1e-6 };
  const [normed, mean] = backend.executeMultipleOutputs('TesseraLayerNorm', [epsilon], [tf.tensor2d([[1, 3]]), tf.tensor1d([1, 1]), tf.tensor1d([0, 0])], 3);
  check(close(normed.dataSync(), [-1, 1]) && close(mean.dataSync(), [2]), `TesseraLayerNorm gave ${normed.dataSync()}`);
  console.log(`verify: backend tensorflow, TF_Version ${libVersion}, matMul, gradient, fit and fused ops OK`);
});
JS
) || fail "the addon was built but does not work (see above)"
say "done: backend 'tensorflow' (TensorFlow ${TF_VERSION}) is ready"
