"""The Keras 3 reference for `pnpm bench train`: times training steps of the three models of
the Keras example "Image classification with modern MLP models" (restated in
/work/shared/reference/REFERENCE.md), built exactly as that example builds them, on random
64x64x3 inputs at batch 128, and measures the machine's sgemm rate with numpy in the same run.

It prints one `RESULT {json}` line per model and one for sgemm; bench/train.ts parses them.
The augmentation layers of the example (normalization, resize, flip, zoom) are left out, as they
are in the Tessera measurement: both time the model from 64x64x3 inputs to the AdamW update.

Run by bench/train.ts from bench/.venv; by hand:
  bench/.venv/bin/python bench/keras_reference.py --models mixer,fnet,gmlp --steps 5 --warmup 2
"""

import argparse
import json
import os
import resource
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

IMAGE_SIZE = 64
PATCH_SIZE = 8
NUM_PATCHES = (IMAGE_SIZE // PATCH_SIZE) ** 2
EMBEDDING_DIM = 256
DROPOUT_RATE = 0.2
NUM_BLOCKS = 4
NUM_CLASSES = 100
LEARNING_RATES = {"mixer": 0.005, "fnet": 0.001, "gmlp": 0.003}
WEIGHT_DECAY = 0.0001


def build(name):
    import keras
    from keras import layers

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

    class PositionEmbedding(layers.Layer):
        def __init__(self, sequence_length, initializer="glorot_uniform", **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = int(sequence_length)
            self.initializer = keras.initializers.get(initializer)

        def build(self, input_shape):
            feature_size = input_shape[-1]
            self.position_embeddings = self.add_weight(
                name="embeddings",
                shape=[self.sequence_length, feature_size],
                initializer=self.initializer,
                trainable=True,
            )
            super().build(input_shape)

        def call(self, inputs, start_index=0):
            shape = keras.ops.shape(inputs)
            feature_length = shape[-1]
            sequence_length = shape[-2]
            position_embeddings = keras.ops.convert_to_tensor(self.position_embeddings)
            position_embeddings = keras.ops.slice(
                position_embeddings, (start_index, 0), (sequence_length, feature_length)
            )
            return keras.ops.broadcast_to(position_embeddings, shape)

    class MLPMixerLayer(layers.Layer):
        def __init__(self, num_patches, hidden_units, dropout_rate, **kwargs):
            super().__init__(**kwargs)
            self.mlp1 = keras.Sequential(
                [
                    layers.Dense(units=num_patches, activation="gelu"),
                    layers.Dense(units=num_patches),
                    layers.Dropout(rate=dropout_rate),
                ]
            )
            self.mlp2 = keras.Sequential(
                [
                    layers.Dense(units=num_patches, activation="gelu"),
                    layers.Dense(units=hidden_units),
                    layers.Dropout(rate=dropout_rate),
                ]
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
        def __init__(self, embedding_dim, dropout_rate, **kwargs):
            super().__init__(**kwargs)
            self.ffn = keras.Sequential(
                [
                    layers.Dense(units=embedding_dim, activation="gelu"),
                    layers.Dropout(rate=dropout_rate),
                    layers.Dense(units=embedding_dim),
                ]
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
        def __init__(self, num_patches, embedding_dim, dropout_rate, **kwargs):
            super().__init__(**kwargs)
            self.channel_projection1 = keras.Sequential(
                [
                    layers.Dense(units=embedding_dim * 2, activation="gelu"),
                    layers.Dropout(rate=dropout_rate),
                ]
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

    if name == "mixer":
        blocks = [MLPMixerLayer(NUM_PATCHES, EMBEDDING_DIM, DROPOUT_RATE) for _ in range(NUM_BLOCKS)]
    elif name == "fnet":
        blocks = [FNetLayer(EMBEDDING_DIM, DROPOUT_RATE) for _ in range(NUM_BLOCKS)]
    else:
        blocks = [gMLPLayer(NUM_PATCHES, EMBEDDING_DIM, DROPOUT_RATE) for _ in range(NUM_BLOCKS)]

    inputs = layers.Input(shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
    patches = Patches(PATCH_SIZE)(inputs)
    x = layers.Dense(units=EMBEDDING_DIM)(patches)
    if name == "fnet":
        x = x + PositionEmbedding(sequence_length=NUM_PATCHES)(x)
    x = keras.Sequential(blocks)(x)
    representation = layers.GlobalAveragePooling1D()(x)
    representation = layers.Dropout(rate=DROPOUT_RATE)(representation)
    logits = layers.Dense(NUM_CLASSES)(representation)
    model = keras.Model(inputs=inputs, outputs=logits)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=LEARNING_RATES[name], weight_decay=WEIGHT_DECAY),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def sgemm_gflops(n=2048, repeats=7):
    """The best of `repeats` float32 matmuls: the machine's attainable rate, which on a shared
    machine the median would understate."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="mixer,fnet,gmlp")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()

    import keras
    import tensorflow as tf

    # Before the models, so that TensorFlow's thread pools do not compete with it, and again
    # after them; the better of the two counts.
    gflops = sgemm_gflops()
    rng = np.random.default_rng(42)
    x = rng.standard_normal((args.batch, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, size=(args.batch,), dtype=np.int32)
    for name in args.models.split(","):
        model = build(name)
        params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        step_ms = []
        for step in range(args.warmup + args.steps):
            start = time.perf_counter()
            model.train_on_batch(x, y)  # returns the loss as numpy: the step has finished
            if step >= args.warmup:
                step_ms.append((time.perf_counter() - start) * 1000)
        median_ms = statistics.median(step_ms)
        print(
            "RESULT "
            + json.dumps(
                {
                    "kind": "model",
                    "model": name,
                    "backend": f"tensorflow {tf.__version__}" + (" (XLA)" if model.jit_compile else ""),
                    "params": params,
                    "batch": args.batch,
                    "steps": args.steps,
                    "stepMs": [round(ms) for ms in step_ms],
                    "medianStepMs": median_ms,
                    "imagesPerSecond": args.batch * 1000 / median_ms,
                    # ru_maxrss is in KiB on Linux, and it is the peak of the process so far.
                    "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                }
            ),
            flush=True,
        )
    gflops = max(gflops, sgemm_gflops())
    print(
        "RESULT "
        + json.dumps(
            {
                "kind": "sgemm",
                "gflops": gflops,
                "versions": f"Keras {keras.__version__}, TensorFlow {tf.__version__}, numpy {np.__version__}, "
                f"{os.cpu_count()} cores",
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
