"""tf.data + keras.utils.image_dataset_from_directory on the benchmark's PNG folder, as bench/data.ts
measures Tessera's image_folder: a first pass (decode) with one thread and with all cores, and a
cached epoch (`.cache()` in memory, the second epoch). Prints `RESULT {json}` lines."""
import argparse
import json
import os
import resource
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--phase", choices=["decode", "cached"], required=True)
parser.add_argument("--dir", required=True)
parser.add_argument("--threads", type=int, default=0, help="0: all cores (AUTOTUNE)")
parser.add_argument("--batch", type=int, default=128)
args = parser.parse_args()

if args.threads:
    os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(args.threads)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

if args.threads:
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)

started = time.perf_counter()
ds = keras.utils.image_dataset_from_directory(
    args.dir, image_size=(32, 32), batch_size=args.batch, shuffle=True, seed=1, verbose=False
)
options = tf.data.Options()
if args.threads:
    options.threading.private_threadpool_size = args.threads
    options.threading.max_intra_op_parallelism = 1
ds = ds.with_options(options)


def epoch(dataset):
    n = 0
    for x, y in dataset:
        n += int(y.shape[0])
    return n


if args.phase == "decode":
    images = epoch(ds)
    seconds = time.perf_counter() - started
    result = {"phase": "decode", "images": images, "seconds": seconds, "imagesPerSecond": images / seconds}
else:
    cached = ds.cache().prefetch(tf.data.AUTOTUNE)
    epoch(cached)  # fills the cache (the first pass)
    opened = time.perf_counter()
    images = epoch(cached)
    seconds = time.perf_counter() - opened
    result = {"phase": "cached", "images": images, "epochSeconds": seconds, "imagesPerSecond": images / seconds}
result["peakRssMiB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
result["versions"] = f"TensorFlow {tf.__version__}, Keras {keras.__version__}"
print("RESULT " + json.dumps(result))
sys.stdout.flush()
