"""The LSTM benchmark case with real TensorFlow/Keras (CPU), the model of examples/lstm_bench.rs:
Sequential([Input((100, 32)), LSTM(128), Dense(1)]), adam, mse, batch 64, 20 batches per epoch
of random normal data; samples/s from the median epoch time after the first. Prints one JSON
line (same keys as lstm_bench). Usage: <tf-python> bench/tf_lstm.py [epochs]"""
import json, os, statistics, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from tensorflow import keras

BATCH, STEPS, FEATURES, UNITS, BATCHES = 64, 100, 32, 128, 20
epochs = max(2, int(sys.argv[1]) if len(sys.argv) > 1 else 4)
keras.utils.set_random_seed(0)
n = BATCH * BATCHES
rng = np.random.default_rng(0)
x = rng.standard_normal((n, STEPS, FEATURES)).astype("float32")
y = rng.standard_normal((n, 1)).astype("float32")
m = keras.Sequential([keras.Input((STEPS, FEATURES)), keras.layers.LSTM(UNITS), keras.layers.Dense(1)])
m.compile(optimizer="adam", loss="mse")
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
m.fit(x, y, epochs=epochs, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[T()])
med = statistics.median(times[1:])
print(json.dumps({"framework": f"tensorflow-{tf.__version__}", "case": f"lstm{UNITS}_t{STEPS}_b{BATCH}",
                  "batch": BATCH, "epochs": epochs, "train_steps_per_s": round(BATCHES / med, 2),
                  "train_samples_per_s": round(n / med, 1), "first_epoch_s": round(times[0], 2),
                  "threads": os.cpu_count()}))
