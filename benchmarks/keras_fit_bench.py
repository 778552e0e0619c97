"""First ``fit`` of a small model: tf-keras (Keras 2) vs Keras 3, and what AutoGraph costs tf-keras.

    python benchmarks/keras_fit_bench.py [--repeats 3] [--steps 100]

Each measurement is a fresh process (the first fit is the one a pipeline's Train pays): a 6-input,
two-hidden-layer classifier like the penguin model, ``fit`` for ``--steps`` steps on a ``tf.data``
pipeline, timed from ``fit`` to its return. Modes:

* ``tf_keras``: Keras 2 as TensorFlow 2.16 ships it (``TF_USE_LEGACY_KERAS=1``) — AutoGraph converts
  tf-keras's own ``train_step`` and friends, because its allowlist knows ``keras`` but not ``tf_keras``;
* ``tf_keras+rule``: the same, after ``headwater.components._keras.skip_autograph_for_tf_keras()``
  (what Train and Evaluate do);
* ``keras3``: ``import keras`` (Keras 3).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import os, sys, time
mode, steps = sys.argv[1], int(sys.argv[2])
if mode.startswith("tf_keras"):
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np
import tensorflow as tf
if mode.startswith("tf_keras"):
    import tf_keras as keras
    if mode.endswith("+rule"):
        from headwater.components._keras import skip_autograph_for_tf_keras
        skip_autograph_for_tf_keras()
else:
    import keras
rng = np.random.default_rng(0)
x = {f"f{i}": rng.random((1000, 1), dtype=np.float32) for i in range(6)}
y = rng.integers(0, 3, 1000)
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(20).repeat()
inputs = [keras.layers.Input(shape=(1,), name=f"f{i}") for i in range(6)]
hidden = keras.layers.concatenate(inputs)
for _ in range(2):
    hidden = keras.layers.Dense(8, activation="relu")(hidden)
model = keras.Model(inputs=inputs, outputs=keras.layers.Dense(3, activation="softmax")(hidden))
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
              metrics=[keras.metrics.SparseCategoricalAccuracy()])
started = time.perf_counter()
model.fit(data, steps_per_epoch=steps, validation_data=data, validation_steps=5, verbose=0)
print(f"FIT {time.perf_counter() - started:.3f}")
"""


def first_fit(mode: str, steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(steps)], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("FIT "))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; first fit of {args.steps} steps, "
          f"median of {args.repeats} fresh processes")
    for mode in ("tf_keras", "tf_keras+rule", "keras3"):
        times = [first_fit(mode, args.steps) for _ in range(args.repeats)]
        print(f"  {mode:<14} {statistics.median(times):6.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times)})",
              flush=True)


if __name__ == "__main__":
    main()
