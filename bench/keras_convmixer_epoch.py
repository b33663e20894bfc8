"""One epoch of Keras 3's ConvMixer (bench/keras_models.py) on the real CIFAR-10 files, to compare
with `exp run experiments/convmixer.yaml --epochs 1` (docs/results.md): after one epoch the
BatchNorm moving statistics have not converged, so inference-mode accuracy is near chance while
training-mode accuracy is not.

Run: bench/.venv/bin/python bench/keras_convmixer_epoch.py [CIFAR10_DIR]
(CIFAR10_DIR: the folder with data_batch_{1..5}.bin and test_batch.bin; default: the Tessera cache's
cifar-10-batches-bin, where `exp run experiments/convmixer.yaml` puts them.)
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import keras  # noqa: E402
from keras_models import build_convmixer  # noqa: E402

cache = os.environ.get("TESSERA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "tessera")
data_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(cache, "cifar-10-batches-bin")


def load(files):
    raw = np.concatenate([np.fromfile(os.path.join(data_dir, f), dtype=np.uint8).reshape(-1, 3073) for f in files])
    return raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).astype("float32"), raw[:, 0].astype("int32")


x, y = load([f"data_batch_{i}.bin" for i in range(1, 6)])
x_test, y_test = load(["test_batch.bin"])
keras.utils.set_random_seed(42)
model = build_convmixer()
model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3, weight_decay=1e-4), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
started = time.time()
# The example's split: the first 10% of the training set for validation.
history = model.fit(x[5000:], y[5000:], batch_size=128, epochs=1, validation_data=(x[:5000], y[:5000]), verbose=2)
print("epoch seconds", round(time.time() - started, 1), history.history)
print("test loss, accuracy (inference mode)", model.evaluate(x_test, y_test, batch_size=256, verbose=0))
first_bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
print("first BatchNorm: mean moving variance", float(np.mean(first_bn.moving_variance.numpy())))
predicted = np.argmax(model(x_test[:500], training=True).numpy(), 1)
print("training-mode accuracy on the first 500 test images", float(np.mean(predicted == y_test[:500])))
