"""Golden logits for experiments/{mixer,fnet,gmlp}.yaml from the Keras reference itself.

The three models below are the Keras example "Image classification with modern MLP models"
(keras.io/examples/vision/mlp_image_classification, Keras 3 version), layer for layer, minus the
data augmentation (Tessera's data pipeline does that, before the model). Each is given the
weights Tessera initialises with seed 42 (exported by reference.test.ts when
TESSERA_KERAS_EXPORT=DIR is set) and run on a fixed input; the logits and the trainable parameter
counts go to keras_reference.json, which reference.test.ts compares against.

Regenerate (any Keras 3 backend with fft2; jax is the lightest install):
    python -m venv /tmp/kvenv && /tmp/kvenv/bin/pip install keras jax jaxlib
    TESSERA_KERAS_EXPORT=/tmp/tessera-weights node_modules/.bin/vitest run packages/models/src/reference.test.ts
    KERAS_BACKEND=jax /tmp/kvenv/bin/python packages/models/src/__fixtures__/keras_reference.py /tmp/tessera-weights
"""
import json
import os
import sys

import numpy as np
import keras
from keras import layers

NUM_CLASSES, IMAGE_SIZE, PATCH_SIZE = 100, 64, 8
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2
EMBEDDING_DIM, DROPOUT_RATE, NUM_BLOCKS = 256, 0.2, 4


class Patches(layers.Layer):
    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, x):
        patches = keras.ops.image.extract_patches(x, self.patch_size)
        batch_size = keras.ops.shape(patches)[0]
        num_patches = keras.ops.shape(patches)[1] * keras.ops.shape(patches)[2]
        patch_dim = keras.ops.shape(patches)[3]
        return keras.ops.reshape(patches, (batch_size, num_patches, patch_dim))


class PositionEmbedding(keras.layers.Layer):
    def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.sequence_length = int(sequence_length)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.position_embeddings = self.add_weight(
            name="embeddings", shape=[self.sequence_length, input_shape[-1]], initializer=self.initializer, trainable=True
        )
        super().build(input_shape)

    def call(self, inputs, start_index=0):
        shape = keras.ops.shape(inputs)
        embeddings = keras.ops.slice(keras.ops.convert_to_tensor(self.position_embeddings), (start_index, 0), (shape[-2], shape[-1]))
        return keras.ops.broadcast_to(embeddings, shape)


class MLPMixerLayer(layers.Layer):
    def __init__(self, num_patches, hidden_units, dropout_rate, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mlp1 = keras.Sequential(
            [layers.Dense(units=num_patches, activation="gelu"), layers.Dense(units=num_patches), layers.Dropout(rate=dropout_rate)]
        )
        self.mlp2 = keras.Sequential(
            [layers.Dense(units=num_patches, activation="gelu"), layers.Dense(units=hidden_units), layers.Dropout(rate=dropout_rate)]
        )
        self.normalize = layers.LayerNormalization(epsilon=1e-6)

    def build(self, input_shape):
        return super().build(input_shape)

    def call(self, inputs):
        x = self.normalize(inputs)
        x_channels = keras.ops.transpose(x, axes=(0, 2, 1))
        mlp1_outputs = self.mlp1(x_channels)
        mlp1_outputs = keras.ops.transpose(mlp1_outputs, axes=(0, 2, 1))
        x = mlp1_outputs + inputs
        x_patches = self.normalize(x)
        mlp2_outputs = self.mlp2(x_patches)
        return x + mlp2_outputs


class FNetLayer(layers.Layer):
    def __init__(self, embedding_dim, dropout_rate, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ffn = keras.Sequential(
            [layers.Dense(units=embedding_dim, activation="gelu"), layers.Dropout(rate=dropout_rate), layers.Dense(units=embedding_dim)]
        )
        self.normalize1 = layers.LayerNormalization(epsilon=1e-6)
        self.normalize2 = layers.LayerNormalization(epsilon=1e-6)

    def call(self, inputs):
        real_part = inputs
        im_part = keras.ops.zeros_like(inputs)
        x = keras.ops.fft2((real_part, im_part))[0]
        x = x + inputs
        x = self.normalize1(x)
        x_ffn = self.ffn(x)
        x = x + x_ffn
        return self.normalize2(x)


class gMLPLayer(layers.Layer):
    def __init__(self, num_patches, embedding_dim, dropout_rate, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.channel_projection1 = keras.Sequential(
            [layers.Dense(units=embedding_dim * 2, activation="gelu"), layers.Dropout(rate=dropout_rate)]
        )
        self.channel_projection2 = layers.Dense(units=embedding_dim)
        self.spatial_projection = layers.Dense(units=num_patches, bias_initializer="Ones")
        self.normalize1 = layers.LayerNormalization(epsilon=1e-6)
        self.normalize2 = layers.LayerNormalization(epsilon=1e-6)

    def spatial_gating_unit(self, x):
        u, v = keras.ops.split(x, indices_or_sections=2, axis=2)
        v = self.normalize2(v)
        v_channels = keras.ops.transpose(v, axes=(0, 2, 1))
        v_projected = self.spatial_projection(v_channels)
        v_projected = keras.ops.transpose(v_projected, axes=(0, 2, 1))
        return u * v_projected

    def call(self, inputs):
        x = self.normalize1(inputs)
        x_projected = self.channel_projection1(x)
        x_spatial = self.spatial_gating_unit(x_projected)
        x_projected = self.channel_projection2(x_spatial)
        return x + x_projected


def build_classifier(blocks, positional_encoding=False):
    inputs = layers.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    patches = Patches(PATCH_SIZE)(inputs)
    x = layers.Dense(units=EMBEDDING_DIM)(patches)
    if positional_encoding:
        x = x + PositionEmbedding(sequence_length=NUM_PATCHES)(x)
    x = blocks(x)
    representation = layers.GlobalAveragePooling1D()(x)
    representation = layers.Dropout(rate=DROPOUT_RATE)(representation)
    logits = layers.Dense(NUM_CLASSES)(representation)
    return keras.Model(inputs=inputs, outputs=logits)


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
    index = np.arange(2 * IMAGE_SIZE * IMAGE_SIZE * 3, dtype=np.float64)
    return (np.sin(index * 0.37) * (1.0 + (index // (IMAGE_SIZE * IMAGE_SIZE * 3)))).astype(np.float32).reshape(2, IMAGE_SIZE, IMAGE_SIZE, 3)


def main(root):
    x = fixed_input()
    result = {}

    w = tessera_weights(os.path.join(root, "mixer"))
    mixer_blocks = [MLPMixerLayer(NUM_PATCHES, EMBEDDING_DIM, DROPOUT_RATE) for _ in range(NUM_BLOCKS)]
    model = build_classifier(keras.Sequential(mixer_blocks))
    embedding, head = first_and_last_dense(model)
    dense(embedding, w, "patch_embedding")
    for i, block in enumerate(mixer_blocks, start=1):
        norm(block.normalize, w, f"block_{i}/norm")
        dense(block.mlp1.layers[0], w, f"block_{i}/token_mixing/dense_1")
        dense(block.mlp1.layers[1], w, f"block_{i}/token_mixing/dense_2")
        dense(block.mlp2.layers[0], w, f"block_{i}/channel_mixing/dense_1")
        dense(block.mlp2.layers[1], w, f"block_{i}/channel_mixing/dense_2")
    dense(head, w, "logits")
    result["mixer"] = {"params": model.count_params(), "logits": model(x, training=False).tolist()}

    w = tessera_weights(os.path.join(root, "fnet"))
    fnet_blocks = [FNetLayer(EMBEDDING_DIM, DROPOUT_RATE) for _ in range(NUM_BLOCKS)]
    model = build_classifier(keras.Sequential(fnet_blocks), positional_encoding=True)
    embedding, head = first_and_last_dense(model)
    dense(embedding, w, "patch_embedding")
    [position] = [l for l in model.layers if isinstance(l, PositionEmbedding)]
    position.set_weights([w["position_embedding_1/embeddings"]])
    for i, block in enumerate(fnet_blocks, start=1):
        dense(block.ffn.layers[0], w, f"block_{i}/feed_forward/dense_1")
        dense(block.ffn.layers[2], w, f"block_{i}/feed_forward/dense_2")
        norm(block.normalize1, w, f"block_{i}/norm_1")
        norm(block.normalize2, w, f"block_{i}/norm_2")
    dense(head, w, "logits")
    result["fnet"] = {"params": model.count_params(), "logits": model(x, training=False).tolist()}

    w = tessera_weights(os.path.join(root, "gmlp"))
    gmlp_blocks = [gMLPLayer(NUM_PATCHES, EMBEDDING_DIM, DROPOUT_RATE) for _ in range(NUM_BLOCKS)]
    model = build_classifier(keras.Sequential(gmlp_blocks))
    embedding, head = first_and_last_dense(model)
    dense(embedding, w, "patch_embedding")
    for i, block in enumerate(gmlp_blocks, start=1):
        norm(block.normalize1, w, f"block_{i}/norm")
        dense(block.channel_projection1.layers[0], w, f"block_{i}/gated_mlp/dense_1")
        norm(block.normalize2, w, f"block_{i}/gated_mlp/spatial_gating/layer_norm_1")
        dense(block.spatial_projection, w, f"block_{i}/gated_mlp/spatial_gating/dense_1")
        dense(block.channel_projection2, w, f"block_{i}/gated_mlp/dense_2")
    dense(head, w, "logits")
    result["gmlp"] = {"params": model.count_params(), "logits": model(x, training=False).tolist()}

    result["generated_by"] = f"keras {keras.__version__} ({keras.backend.backend()}), {os.path.basename(__file__)}"
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keras_reference.json")
    with open(out, "w") as f:
        json.dump(result, f)
    print(out, {k: v["params"] for k, v in result.items() if isinstance(v, dict)})


if __name__ == "__main__":
    main(sys.argv[1])
