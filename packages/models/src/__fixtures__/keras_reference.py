"""Golden logits for experiments/{mixer,fnet,gmlp,convmixer,vit-small}.yaml from the Keras reference itself.

The three models are bench/keras_models.py: the Keras example "Image classification with modern
MLP models" (keras.io/examples/vision/mlp_image_classification, Keras 3 version), layer for layer,
minus the data augmentation (Tessera's data pipeline does that, before the model); the same models
that `pnpm bench train` times. Each is given the weights Tessera initialises with seed 42 (exported
by reference.test.ts when TESSERA_KERAS_EXPORT=DIR is set) and run on a fixed input; the logits
and the parameter counts go to keras_reference.json (or to OUT), which reference.test.ts compares
against.

ConvMixer and ViT-small (keras_models.MORE_MODELS) run on real images: the first CIFAR-100 test
images (their raw bytes go into the fixture, so the test needs no data), nearest-upsampled to 72x72
and scaled to [0, 1] for the ViT. Their weights are loaded by position: reference.test.ts writes
the names in Keras' order (layer by layer, each layer's trainable weights then its
non-trainable ones) to WEIGHTS_DIR/<name>/order.json. ConvMixer is run in training mode (batch
statistics; its moving statistics move once), then at inference with the moved statistics.

Usage: keras_reference.py WEIGHTS_DIR [OUT]

Regenerate with any Keras 3 backend that has fft2, e.g. TensorFlow from bench/.venv (which
`pnpm bench train` creates):
    TESSERA_KERAS_EXPORT=/tmp/tessera-weights node_modules/.bin/vitest run packages/models/src/reference.test.ts
    KERAS_BACKEND=tensorflow bench/.venv/bin/python packages/models/src/__fixtures__/keras_reference.py /tmp/tessera-weights
or jax, the lightest install (the committed file was made with it):
    python -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras jax jaxlib
    KERAS_BACKEND=jax /tmp/kvenv/bin/python packages/models/src/__fixtures__/keras_reference.py /tmp/tessera-weights
"""
import json
import os
import sys

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up notices, when it is the backend
# The models live with the benchmark that times them: <repo>/bench, four folders up from here.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 4, "bench"))

import keras  # noqa: E402
from keras import layers  # noqa: E402

import keras_models  # noqa: E402

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_reference.json")


def tessera_weights(directory):
    """{original weight name: numpy array} from a TF.js LayersModel directory."""
    with open(os.path.join(directory, "model.json")) as f:
        manifest = json.load(f)["weightsManifest"]
    out, offset = {}, 0
    data = b"".join(open(os.path.join(directory, p), "rb").read() for group in manifest for p in group["paths"])
    for group in manifest:
        for spec in group["weights"]:
            size = int(np.prod(spec["shape"]))
            out[spec["name"]] = np.frombuffer(data, dtype="<f4", count=size, offset=offset).reshape(spec["shape"])
            offset += 4 * size
    return out


def first_and_last_dense(model):
    found = [l for l in model.layers if isinstance(l, layers.Dense)]
    return found[0], found[-1]


def dense(layer, w, name):
    layer.set_weights([w[f"{name}/kernel"], w[f"{name}/bias"]])


def norm(layer, w, name):
    layer.set_weights([w[f"{name}/gamma"], w[f"{name}/beta"]])


def fixed_input():
    """The same numbers reference.test.ts makes: sin of the flat index, scaled per example."""
    size = keras_models.IMAGE_SIZE
    index = np.arange(2 * size * size * 3, dtype=np.float64)
    return (np.sin(index * 0.37) * (1.0 + (index // (size * size * 3)))).astype(np.float32).reshape(2, size, size, 3)


def blocks(model):
    return model.get_layer("blocks").layers


def load_mixer(model, w):
    for i, block in enumerate(blocks(model), start=1):
        norm(block.normalize, w, f"block_{i}/norm")
        dense(block.mlp1.layers[0], w, f"block_{i}/token_mixing/dense_1")
        dense(block.mlp1.layers[1], w, f"block_{i}/token_mixing/dense_2")
        dense(block.mlp2.layers[0], w, f"block_{i}/channel_mixing/dense_1")
        dense(block.mlp2.layers[1], w, f"block_{i}/channel_mixing/dense_2")


def load_fnet(model, w):
    [position] = [l for l in model.layers if isinstance(l, keras_models.PositionEmbedding)]
    position.set_weights([w["position_embedding_1/embeddings"]])
    for i, block in enumerate(blocks(model), start=1):
        dense(block.ffn.layers[0], w, f"block_{i}/feed_forward/dense_1")
        dense(block.ffn.layers[2], w, f"block_{i}/feed_forward/dense_2")
        norm(block.normalize1, w, f"block_{i}/norm_1")
        norm(block.normalize2, w, f"block_{i}/norm_2")


def load_gmlp(model, w):
    for i, block in enumerate(blocks(model), start=1):
        norm(block.normalize1, w, f"block_{i}/norm")
        dense(block.channel_projection1.layers[0], w, f"block_{i}/gated_mlp/dense_1")
        norm(block.normalize2, w, f"block_{i}/gated_mlp/spatial_gating/layer_norm_1")
        dense(block.spatial_projection, w, f"block_{i}/gated_mlp/spatial_gating/dense_1")
        dense(block.channel_projection2, w, f"block_{i}/gated_mlp/dense_2")


# model name -> what loads Tessera's weights into its blocks (and position embedding)
LOAD_BLOCKS = {"mixer": load_mixer, "fnet": load_fnet, "gmlp": load_gmlp}


CIFAR100_TEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 5, "shared", "data", "cifar-100", "test.bin.gz")
REAL_IMAGES = 4


def real_images():
    """[REAL_IMAGES, 32, 32, 3] uint8: the first CIFAR-100 test images (records: coarse, fine, 3 planes of 32x32)."""
    import gzip

    with gzip.open(CIFAR100_TEST, "rb") as f:
        data = np.frombuffer(f.read(REAL_IMAGES * 3074), dtype=np.uint8).reshape(REAL_IMAGES, 3074)
    return data[:, 2:].reshape(REAL_IMAGES, 3, 32, 32).transpose(0, 2, 3, 1).copy()


def upsample(images, size):
    """Nearest upsampling by integer index arithmetic (reference.test.ts does the same), scaled to [0, 1]."""
    index = (np.arange(size) * images.shape[1]) // size
    return (images[:, index][:, :, index].astype(np.float64) / 255).astype(np.float32)


def load_by_order(model, directory):
    w = tessera_weights(directory)
    with open(os.path.join(directory, "order.json")) as f:
        order = json.load(f)
    if len(order) != len(model.weights):
        raise SystemExit(f"{directory}: Tessera has {len(order)} weights, Keras {len(model.weights)}")
    for variable, name in zip(model.weights, order):
        value = w[name]
        if "depthwise" in variable.path and value.size == np.prod(variable.shape):
            # conv2d with groups = channels keeps Keras Conv2D's [kh, kw, 1, c * m]; DepthwiseConv2D
            # holds the same numbers as [kh, kw, c, m] (output c * m + k reads input c).
            value = value.reshape(variable.shape)
        if tuple(variable.shape) != value.shape:
            raise SystemExit(f"{directory}: Keras {variable.path} {tuple(variable.shape)} vs Tessera {name} {w[name].shape}")
        variable.assign(value)


def first_batch_norm(model):
    return next(l for l in model.layers if isinstance(l, layers.BatchNormalization))


def more_models(root, result):
    images = real_images()
    result["real_images"] = images.reshape(-1).tolist()
    for name, (build, size, _, _, _, _) in keras_models.MORE_MODELS.items():
        if not os.path.isdir(os.path.join(root, name)):
            continue
        model = build()
        load_by_order(model, os.path.join(root, name))
        entry = {"params": model.count_params(), "trainable": int(sum(np.prod(v.shape) for v in model.trainable_weights))}
        if name == "convmixer":
            x = images.astype(np.float32)
            entry["training"] = keras.ops.convert_to_numpy(model(x, training=True)).tolist()
            norm = first_batch_norm(model)
            entry["moving_mean"] = keras.ops.convert_to_numpy(norm.moving_mean).tolist()
            entry["moving_variance"] = keras.ops.convert_to_numpy(norm.moving_variance).tolist()
        else:
            x = upsample(images, size)
        entry["logits"] = keras.ops.convert_to_numpy(model(x, training=False)).tolist()
        result[name] = entry


def main(root, out=DEFAULT_OUT):
    x = fixed_input()
    result = {}
    more_models(root, result)
    for name, load_blocks in LOAD_BLOCKS.items():
        w = tessera_weights(os.path.join(root, name))
        model = keras_models.build(name)
        embedding, head = first_and_last_dense(model)
        dense(embedding, w, "patch_embedding")
        load_blocks(model, w)
        dense(head, w, "logits")
        logits = keras.ops.convert_to_numpy(model(x, training=False))
        result[name] = {"params": model.count_params(), "logits": logits.tolist()}

    result["generated_by"] = f"keras {keras.__version__} ({keras.backend.backend()}), {os.path.basename(__file__)}"
    with open(out, "w") as f:
        json.dump(result, f)
    print(out, {k: v["params"] for k, v in result.items() if isinstance(v, dict)})


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 3:
        sys.exit(f"usage: {os.path.basename(__file__)} WEIGHTS_DIR [OUT]  (OUT defaults to {DEFAULT_OUT})")
    main(*sys.argv[1:])
