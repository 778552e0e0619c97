"""The penguin model behind headwater serve: the template's web page encoder (run in node) against the real
model, a wrong feature type answered with 400, and InfraValidate on the real Ingest examples."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from ml_helpers import raw_eval_examples

pytest.importorskip("starlette")
pytestmark = pytest.mark.ml

WEB = Path(__file__).resolve().parents[2] / "templates" / "penguin" / "web"


def _only(result, node: str, key: str):
    (artifact,) = result.nodes[node].outputs[key]
    return artifact


@pytest.fixture(scope="module")
def serving(trained, tmp_path_factory):
    from headwater.components.train import serving_model_path

    model = _only(trained, "Train", "model")
    base = tmp_path_factory.mktemp("penguin-serving")
    shutil.copytree(serving_model_path(model.uri), base / "1")
    return base


def node_encode(features: dict) -> bytes:
    """The serialized tf.Example that web/penguin.js builds for ``features``, base64-decoded."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    script = (f"const p = require({json.dumps(str(WEB / 'penguin.js'))});"
              f"process.stdout.write(p.base64(p.encodeExample({json.dumps(features)})));")
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60, check=True)
    return base64.b64decode(out.stdout)


def test_the_web_pages_tf_example_is_what_tensorflow_writes_and_the_server_predicts_it(serving):
    import tensorflow as tf
    from headwater.serving import ModelRepository, create_app
    from starlette.testclient import TestClient
    from tensorflow.core.example import example_pb2

    features = {"island": ["bytes", ["Dream"]], "sex": ["bytes", ["female"]], "bill_length_mm": ["float", [46.5]],
                "bill_depth_mm": ["float", [17.9]], "flipper_length_mm": ["int64", [192]],
                "body_mass_g": ["int64", [3500]], "year": ["int64", [2008]]}  # the tests' module parses year too
    encoded = node_encode(features)
    parsed = example_pb2.Example.FromString(encoded)
    expected = example_pb2.Example()
    f = expected.features.feature
    f["island"].bytes_list.value.append(b"Dream")
    f["sex"].bytes_list.value.append(b"female")
    f["bill_length_mm"].float_list.value.append(46.5)
    f["bill_depth_mm"].float_list.value.append(17.9)
    f["flipper_length_mm"].int64_list.value.append(192)
    f["body_mass_g"].int64_list.value.append(3500)
    f["year"].int64_list.value.append(2008)
    assert parsed == expected

    fn = tf.saved_model.load(str(serving / "1")).signatures["serving_default"]
    floor = next(iter(fn(examples=tf.constant([expected.SerializeToString()])).values())).numpy().tolist()
    with TestClient(create_app(ModelRepository(serving, "penguin"), web_dir=WEB)) as c:
        page = c.get("/")
        assert 'src="penguin.js"' in page.text and "<script>" not in page.text  # no inline script
        answer = c.post("/v1/models/penguin:predict",
                        json={"instances": [{"b64": base64.b64encode(encoded).decode()}]})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": floor}
        assert sum(floor[0]) == pytest.approx(1.0, abs=1e-5)
        # A feature of the wrong type (a float where the schema says int64): 400, naming the feature.
        wrong = dict(features, flipper_length_mm=["float", [192.5]])
        bad = c.post("/v1/models/penguin:predict",
                     json={"instances": [{"b64": base64.b64encode(node_encode(wrong)).decode()}]})
        assert bad.status_code == 400
        assert list(bad.json()) == ["error"]
        assert "flipper_length_mm" in bad.json()["error"] and "Data types don't match" in bad.json()["error"]
        # Not base64 of a tf.Example at all: TensorFlow's parse error, 400.
        junk = c.post("/v1/models/penguin:predict", json={"instances": [{"b64": "bm90IGFuIGV4YW1wbGU="}]})
        assert junk.status_code == 400 and "Could not parse example input" in junk.json()["error"]


def test_infra_validate_blesses_the_penguin_model_on_ingested_examples(penguins, trained):
    from headwater.components.infra_validate import InfraValidate

    ingest, transform, train = penguins.upstream()
    infra = InfraValidate(model=train.outputs.model, examples=ingest.outputs.examples, num_examples=8)
    result = penguins.run("penguin_infra", [ingest, transform, train, infra])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    blessing = _only(result, "InfraValidate", "blessing")
    assert blessing.custom_properties["blessed"] == 1, blessing.custom_properties
    assert "answered :predict on 8 examples for signature(s) serving_default" in \
        blessing.custom_properties["blessing_message"]
    records, _ = raw_eval_examples(_only(result, "Ingest", "examples").uri)
    assert len(records) > 8  # the requests were a few of the real eval examples
