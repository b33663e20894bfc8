"""The Keras 3 reference for `pnpm bench train`: times training steps of the three models of
the Keras example "Image classification with modern MLP models" (restated in
docs/reference.md), built exactly as that example builds them (keras_models.py,
the same models that give Tessera's golden logits), on random 64x64x3 inputs at batch 128, and of
ConvMixer (32x32x3) and ViT-small (72x72x3) from keras_models.MORE_MODELS; and measures the
machine's sgemm rate with numpy in the same run. Each model is timed twice, compiled with Keras'
default and with jit_compile=True (XLA); the faster is reported (both step times go with it).

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


def spec(name):
    """(image size, classes, whether the model outputs logits, learning rate) of model `name`."""
    import keras_models

    if name in keras_models.MODELS:
        return keras_models.IMAGE_SIZE, keras_models.NUM_CLASSES, True, LEARNING_RATES[name]
    _, size, classes, logits, rate, _ = keras_models.MORE_MODELS[name]
    return size, classes, logits, rate


def build(name, jit_compile=None):
    """The model `name` of keras_models.py, compiled as its example compiles it (jit_compile: Keras' default when None)."""
    import keras
    import keras_models

    model = keras_models.build(name) if name in keras_models.MODELS else keras_models.MORE_MODELS[name][0]()
    _, _, logits, rate = spec(name)
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=rate, weight_decay=WEIGHT_DECAY),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=logits),
        **({} if jit_compile is None else {"jit_compile": jit_compile}),
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
    from keras_models import MODELS, MORE_MODELS

    names = args.models.split(",")
    known = [*MODELS, *MORE_MODELS]
    unknown = [name for name in names if name not in known]
    if unknown:
        parser.error(f"--models: unknown {', '.join(unknown)}; expected a comma-separated list of {', '.join(known)}")

    # Before the models, so that TensorFlow's thread pools do not compete with it, and again
    # after them; the better of the two counts.
    gflops = sgemm_gflops()
    rng = np.random.default_rng(42)
    for name in names:
        size, classes, _, _ = spec(name)
        x = rng.standard_normal((args.batch, size, size, 3), dtype=np.float32)
        y = rng.integers(0, classes, size=(args.batch,), dtype=np.int32)
        timed = []
        for jit_compile in (None, True):
            model = build(name, jit_compile)
            params = int(sum(np.prod(w.shape) for w in model.trainable_weights))
            step_ms = []
            for step in range(args.warmup + args.steps):
                start = time.perf_counter()
                model.train_on_batch(x, y)  # returns the loss as numpy: the step has finished
                if step >= args.warmup:
                    step_ms.append((time.perf_counter() - start) * 1000)
            timed.append((statistics.median(step_ms), step_ms, bool(model.jit_compile)))
            del model
        median_ms, step_ms, xla = min(timed)
        others = ", ".join(f"{'XLA' if jit else 'default'} {ms:.0f} ms" for ms, _, jit in timed)
        print(
            "RESULT "
            + json.dumps(
                {
                    "kind": "model",
                    "model": name,
                    "backend": f"tensorflow {tf.__version__}" + (" (XLA)" if xla else ""),
                    "note": f"median steps: {others}",
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
