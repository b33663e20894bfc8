"""The Keras 3 reference for `pnpm bench train`: times training steps of the three models of
the Keras example "Image classification with modern MLP models" (restated in
docs/reference.md), built exactly as that example builds them (keras_models.py,
the same models that give Tessera's golden logits), on random 64x64x3 inputs at batch 128, and
measures the machine's sgemm rate with numpy in the same run.

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

LEARNING_RATES = {"mixer": 0.005, "fnet": 0.001, "gmlp": 0.003}
WEIGHT_DECAY = 0.0001


def build(name):
    """The model `name` of keras_models.py, compiled as the example compiles it."""
    import keras
    import keras_models

    model = keras_models.build(name)
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
    from keras_models import IMAGE_SIZE, MODELS, NUM_CLASSES

    names = args.models.split(",")
    unknown = [name for name in names if name not in MODELS]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; expected a comma-separated list of {', '.join(MODELS)}")

    # Before the models, so that TensorFlow's thread pools do not compete with it, and again
    # after them; the better of the two counts.
    gflops = sgemm_gflops()
    rng = np.random.default_rng(42)
    x = rng.standard_normal((args.batch, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    y = rng.integers(0, NUM_CLASSES, size=(args.batch,), dtype=np.int32)
    for name in names:
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
