"""Time to the first finished training step with TensorFlow/Keras: import TensorFlow, build and
compile the seed CNN (as ../shared/bench/tf_anchor.py and examples/keras_bench.rs do), and run one
`train_on_batch` on a fixed synthetic batch of 32 images (pixel i = (i % 255) / 255, label j = j % 10;
the same batch as `keras_bench startup`). Prints one JSON line: `first_step_unix_s` (the wall clock
when the step finished; bench/compare.py subtracts the time it spawned this interpreter) and
`in_process_s` (from the first line of this script, so without the interpreter's own start)."""
import time

T0 = time.perf_counter()
import json, os  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow import keras  # noqa: E402


def cnn():  # the seed CNN, as in tf_anchor.py
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(64, (3, 3), activation="relu"), keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax")])


def main():
    x = (np.arange(32 * 28 * 28) % 255).astype("float32").reshape(32, 28, 28, 1) / 255.0
    y = (np.arange(32) % 10).astype("int64")
    keras.utils.set_random_seed(0)
    m = cnn()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = m.train_on_batch(x, y, return_dict=True)
    now = time.time()
    print(json.dumps({"framework": f"tensorflow-{tf.__version__}", "case": "startup",
                      "first_step_unix_s": round(now, 6), "in_process_s": round(time.perf_counter() - T0, 6),
                      "loss": round(float(logs["loss"]), 6)}), flush=True)


if __name__ == "__main__":
    main()
