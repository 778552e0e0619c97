"""Real SavedModels for the serving tests: a trained Keras regressor, a two-input tf.Module, a v1 classifier."""

from __future__ import annotations

from pathlib import Path


def keras_regressor(path: Path, *, seed: int = 0) -> Path:
    """A Keras model trained on y = x0 + 2*x1 (a few epochs); ``serving_default``: x [None, 2] float -> y."""
    from headwater.components._keras import prefer_tf_keras

    prefer_tf_keras()
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(seed)
    x = np.random.default_rng(seed).normal(size=(256, 2)).astype("float32")
    y = x[:, 0] + 2 * x[:, 1]
    inputs = tf.keras.Input(shape=(2,), name="x")
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, name="y")(inputs))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.1), loss="mse")
    model.fit(x, y, epochs=20, batch_size=64, verbose=0)

    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
    def serve(x):
        return {"y": model(x)}

    model.save(str(path), save_format="tf", signatures={"serving_default": serve})
    return path


def multi_input(path: Path, *, scale: float = 1.0) -> Path:
    """A tf.Module: inputs x [None, 2] float and tag [None] string; outputs sum, tag length, tag bytes."""
    import tensorflow as tf

    class Model(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable(scale)

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x"),
                                      tf.TensorSpec([None], tf.string, name="tag")])
        def serve(self, x, tag):
            return {"total": tf.reduce_sum(x, axis=1) * self.scale, "tag_length": tf.strings.length(tag),
                    "tag_bytes": tag}

    module = Model()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def no_signature(path: Path) -> Path:
    """A SavedModel with a variable and no signature at all."""
    import tensorflow as tf

    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, str(path), signatures={})
    return path


def v1_classifier(path: Path) -> Path:
    """A TF1-style SavedModel with classify, regress and predict signatures over tf.Examples (feature x)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        serialized = v1.placeholder(tf.string, [None], name="examples")
        parsed = v1.io.parse_example(serialized, {"x": v1.io.FixedLenFeature([1], tf.float32)})
        x = parsed["x"]
        score_b = tf.sigmoid(x)
        scores = tf.concat([1.0 - score_b, score_b], axis=1)
        classes = tf.tile(tf.constant([["small", "large"]]), [tf.shape(x)[0], 1])
        doubled = 2.0 * x
        sigs = v1.saved_model.signature_def_utils
        builder = v1.saved_model.Builder(str(path))
        with v1.Session(graph=graph) as session:
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={
                "classify_x": sigs.classification_signature_def(serialized, classes, scores),
                "regress_x": sigs.regression_signature_def(serialized, doubled),
                "serving_default": sigs.predict_signature_def({"examples": serialized}, {"scores": scores}),
            })
        builder.save()
    return path


def memory_hog(path: Path, *, floats: int = 400_000_000) -> Path:
    """Loads in no memory to speak of; every request allocates ``floats`` float32s (1.6 GB by default)."""
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def serve(self, x):
            big = tf.random.uniform([floats + tf.shape(x)[0] * 0])  # random: nothing can fold it away
            return {"y": tf.reduce_sum(x, axis=1) + tf.minimum(tf.reduce_max(big), 0.0)}

    module = Model()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


def corrupt(path: Path) -> Path:
    """A folder whose saved_model.pb is not a SavedModel."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "saved_model.pb").write_bytes(b"\x0a\xffthis is not a protocol buffer")
    return path
