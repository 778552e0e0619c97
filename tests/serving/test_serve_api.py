"""headwater serve's REST API in process (Starlette's TestClient): TF Serving's URLs, JSON shapes and errors,
on real SavedModels; new versions picked up while serving; bad input answered with 400/404."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytestmark = pytest.mark.ml


def client(base: Path, name: str, **kwargs):
    from headwater.serving import ModelRepository, create_app
    from starlette.testclient import TestClient

    repo = ModelRepository(base, name, poll_seconds=kwargs.pop("poll_seconds", 0.2))
    return TestClient(create_app(repo, **kwargs))


def push_like(source: Path, base: Path, version: int) -> Path:
    """Write a version the way Push does on a local disk: copy into a hidden sibling, then rename."""
    tmp = base / f".push-tmp-{version}"
    shutil.copytree(source, tmp)
    target = base / str(version)
    tmp.rename(target)
    return target


def bare(model_dir: Path, **inputs):
    """The floor: the SavedModel's serving_default called in process, without the server."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    return {k: v.numpy().tolist() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def wait_for(c, version, name="reg"):
    """The states of every version once ``version`` has loaded (or failed) and nothing is loading."""
    deadline, states = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        response = c.get(f"/v1/models/{name}")
        if response.status_code == 200:
            states = {e["version"]: e["state"] for e in response.json()["model_version_status"]}
            if states.get(str(version)) in ("AVAILABLE", "END") and "LOADING" not in states.values():
                return states
        time.sleep(0.1)
    raise AssertionError(f"version {version} never settled: {states}")


def test_status_metadata_and_predict_match_tf_serving_shapes(models, tmp_path):
    base = tmp_path / "serving"
    push_like(models["regressor"], base, 1)
    with client(base, "reg") as c:
        status = c.get("/v1/models/reg")
        assert status.status_code == 200
        assert status.json() == {"model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
        assert c.get("/v1/models/reg/versions/1").json() == status.json()
        meta = c.get("/v1/models/reg/metadata").json()
        assert meta["model_spec"] == {"name": "reg", "signature_name": "", "version": "1"}
        sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert sig["method_name"] == "tensorflow/serving/predict"
        assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in sig["inputs"]["x"]["tensor_shape"]["dim"]] == ["-1", "2"]
        assert c.get("/v1/models/reg/versions/1/metadata").json() == meta

        x = [[1.0, 2.0], [0.5, -1.0], [3, 0]]
        floor = bare(models["regressor"], x=[[float(v) for v in row] for row in x])["y"]
        rows = c.post("/v1/models/reg:predict", json={"instances": x})
        assert rows.status_code == 200 and rows.headers["content-type"] == "application/json"
        assert rows.json() == {"predictions": floor}
        named = c.post("/v1/models/reg/versions/1:predict", json={"instances": [{"x": r} for r in x]})
        assert named.json() == {"predictions": floor}
        columns = c.post("/v1/models/reg:predict", json={"inputs": {"x": x}})
        assert columns.json() == {"outputs": floor}
        assert c.post("/v1/models/reg:predict", json={"inputs": x}).json() == {"outputs": floor}
        # The trained model learned y = x0 + 2*x1.
        assert floor[0][0] == pytest.approx(5.0, abs=0.3)


def test_several_inputs_and_outputs_b64_in_and_bytes_out(models, tmp_path):
    push_like(models["multi"], tmp_path / "m", 4)
    with client(tmp_path / "m", "m") as c:
        raw = b"\x00\xffzz"
        out = c.post("/v1/models/m:predict", json={"instances": [
            {"x": [1, 2], "tag": "ab"}, {"x": [3.5, 4], "tag": {"b64": base64.b64encode(raw).decode()}}]})
        assert out.status_code == 200, out.text
        assert out.json() == {"predictions": [
            {"tag_bytes": {"b64": base64.b64encode(b"ab").decode()}, "tag_length": 2, "total": 3.0},
            {"tag_bytes": {"b64": base64.b64encode(raw).decode()}, "tag_length": 4, "total": 7.5}]}
        cols = c.post("/v1/models/m:predict", json={"inputs": {"x": [[1, 2]], "tag": ["abc"]}})
        assert cols.json() == {"outputs": {"tag_bytes": [{"b64": "YWJj"}], "tag_length": [3], "total": [3.0]}}
        meta = c.get("/v1/models/m/metadata").json()
        assert meta["model_spec"]["version"] == "4"


def test_classify_and_regress_where_the_signature_allows(models, tmp_path):
    push_like(models["v1"], tmp_path / "c", 1)
    with client(tmp_path / "c", "c") as c:
        out = c.post("/v1/models/c:classify", json={"signature_name": "classify_x",
                                                    "examples": [{"x": 0.0}, {"x": 2.0}]})
        assert out.status_code == 200, out.text
        result = out.json()["result"]
        assert [[label for label, _ in row] for row in result] == [["small", "large"]] * 2
        assert result[0][1][1] == pytest.approx(0.5) and result[1][1][1] == pytest.approx(0.8807971)
        # "context" features are shared by every example.
        ctx = c.post("/v1/models/c:classify", json={"signature_name": "classify_x", "context": {"x": 2.0},
                                                    "examples": [{}, {}]})
        assert ctx.json()["result"][1][1][1] == pytest.approx(0.8807971)
        reg = c.post("/v1/models/c:regress", json={"signature_name": "regress_x", "examples": [{"x": 1.5}]})
        assert reg.json() == {"result": [3.0]}
        # :classify on a predict signature is refused as TF Serving refuses it.
        wrong = c.post("/v1/models/c:classify", json={"examples": [{"x": 1.0}]})
        assert wrong.status_code == 400
        assert wrong.json()["error"].startswith(
            "Expected classification signature method_name to be tensorflow/serving/classify. "
            "Was: tensorflow/serving/predict")
        # A whole JSON number is an int64 feature; the model parses a float one: TensorFlow's reason, 400.
        typed = c.post("/v1/models/c:regress", json={"signature_name": "regress_x", "examples": [{"x": 2}]})
        assert typed.status_code == 400
        assert "Data types don't match. Data type: int64 but expected type: float" in typed.json()["error"]
        clash = c.post("/v1/models/c:classify", json={"signature_name": "classify_x", "context": {"x": 1.0},
                                                      "examples": [{"x": 2.0}]})
        assert clash.status_code == 400 and "also appear in 'context'" in clash.json()["error"]


@pytest.mark.parametrize(("method", "url", "body", "status", "error"), [
    ("post", "/v1/models/other:predict", {"instances": [[1, 2]]}, 404,
     r"^Servable not found for request: Latest\(other\): this server serves model 'reg' only$"),
    ("post", "/v1/models/reg/versions/7:predict", {"instances": [[1, 2]]}, 404,
     r"^Servable not found for request: Specific\(reg, 7\): .* has no version 7$"),
    ("get", "/v1/models/reg/versions/7", None, 404, r"Specific\(reg, 7\)"),
    ("post", "/v1/models/reg/versions/x:predict", {"instances": [[1, 2]]}, 400, r"version 'x' is not a number"),
    ("post", "/v1/models/reg:explain", {"instances": [[1, 2]]}, 404, r"^Malformed request: POST"),
    ("post", "/v1/models/reg:predict", {"instance": [[1, 2]]}, 400, r"^Missing 'inputs' or 'instances' key$"),
    ("post", "/v1/models/reg:predict", {"instances": [[1, 2]], "inputs": [[1, 2]]}, 400,
     r"only one of 'inputs' or 'instances'"),
    ("post", "/v1/models/reg:predict", {"instances": [["a", 2.0]]}, 400,
     r'^JSON Value: "a" Type: String is not of expected type: float \(input \'x\', dtype DT_FLOAT\)$'),
    ("post", "/v1/models/reg:predict", {"instances": [[1, 2, 3]]}, 400,
     r"input 'x' has shape \[1,3\], but the signature expects \[-1,2\]"),
    ("post", "/v1/models/reg:predict", {"instances": [[1, 2], [3]]}, 400, r"different lengths"),
    ("post", "/v1/models/reg:predict", {"signature_name": "nope", "instances": [[1, 2]]}, 400,
     r'^Serving signature name: "nope" not found in signature def \(this model\'s signatures: serving_default\)$'),
    ("post", "/v1/models/reg:predict", {"instances": [{"x": [1, 2], "z": 1}]}, 400, r"unknown input\(s\) 'z'"),
    ("post", "/v1/models/reg:regress", {"examples": [{"x": 1}]}, 400, r"Expected regression signature"),
])
def test_bad_requests_get_tf_servings_error_shape(models, tmp_path, method, url, body, status, error):
    import re

    push_like(models["regressor"], tmp_path / "s", 1)
    with client(tmp_path / "s", "reg") as c:
        response = c.get(url) if method == "get" else c.post(url, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    assert list(payload) == ["error"] and re.search(error, payload["error"]), payload


def test_unparseable_json_is_a_400(models, tmp_path):
    push_like(models["regressor"], tmp_path / "s", 1)
    with client(tmp_path / "s", "reg") as c:
        response = c.post("/v1/models/reg:predict", content=b"{instances: [1")
    assert response.status_code == 400 and response.json()["error"].startswith("JSON Parse error:")


def test_a_destination_with_no_versions_answers_404_until_push_writes_one(models, tmp_path):
    base = tmp_path / "empty"
    base.mkdir()
    (base / ".push-tmp-abc").mkdir()  # an unfinished push is not a version
    with client(base, "penguin") as c:
        status = c.get("/v1/models/penguin")
        assert status.status_code == 404
        assert status.json()["error"].startswith("Could not find any versions of model penguin: ")
        assert "holds no version yet (Push writes" in status.json()["error"]
        predict = c.post("/v1/models/penguin:predict", json={"instances": [[1, 2]]})
        assert predict.status_code == 404
        assert predict.json()["error"].startswith("Servable not found for request: Latest(penguin): ")
        push_like(models["regressor"], base, 1)
        assert wait_for(c, 1, "penguin") == {"1": "AVAILABLE"}
        assert c.post("/v1/models/penguin:predict", json={"instances": [[1, 2]]}).status_code == 200


def test_a_model_without_a_serving_signature_is_never_served(models, tmp_path):
    push_like(models["nosig"], tmp_path / "n", 1)
    with client(tmp_path / "n", "n") as c:
        (entry,) = c.get("/v1/models/n").json()["model_version_status"]
        assert entry["state"] == "END" and entry["status"]["error_code"] == "UNKNOWN"
        assert "has no serving signature" in entry["status"]["error_message"]
        predict = c.post("/v1/models/n:predict", json={"instances": [1]})
        assert predict.status_code == 404 and "has no serving signature" in predict.json()["error"]


def test_new_versions_are_picked_up_while_serving_and_broken_ones_skipped(models, tmp_path):
    base = tmp_path / "serving"
    push_like(models["regressor"], base, 1)
    x = [[1.0, 2.0]]
    first = bare(models["regressor"], x=x)["y"]
    second = bare(models["regressor_b"], x=x)["y"]
    assert first != second

    with client(base, "reg") as c:
        assert c.post("/v1/models/reg:predict", json={"instances": x}).json() == {"predictions": first}
        push_like(models["regressor_b"], base, 2)
        assert wait_for(c, 2) == {"2": "AVAILABLE", "1": "END"}
        assert c.post("/v1/models/reg:predict", json={"instances": x}).json() == {"predictions": second}
        assert c.post("/v1/models/reg/versions/2:predict", json={"instances": x}).json() == {"predictions": second}
        old = c.post("/v1/models/reg/versions/1:predict", json={"instances": x})
        assert old.status_code == 404 and "version 1 is END (only the latest version is served)" in old.json()["error"]
        # A newer version that cannot load is reported, and the current one keeps answering.
        (base / "3").mkdir()
        (base / "3" / "saved_model.pb").write_bytes(b"\x0a\xffnot a SavedModel")
        states = wait_for(c, 3)
        assert states == {"3": "END", "2": "AVAILABLE", "1": "END"}
        broken = c.get("/v1/models/reg/versions/3").json()["model_version_status"][0]["status"]
        assert broken["error_code"] == "UNKNOWN" and "cannot read" in broken["error_message"]
        assert c.post("/v1/models/reg:predict", json={"instances": x}).json() == {"predictions": second}


def test_web_folder_is_served_at_the_root_with_a_strict_content_security_policy(models, tmp_path):
    push_like(models["regressor"], tmp_path / "s", 1)
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>t</title><script src='app.js'></script>")
    (web / "app.js").write_text("console.log(1)")
    with client(tmp_path / "s", "reg", web_dir=web) as c:
        page = c.get("/")
        assert page.status_code == 200 and "app.js" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'self'")
        assert c.get("/app.js").headers["content-type"].startswith("text/javascript")
        assert c.get("/v1/models/reg").status_code == 200  # the API still wins over the static files
    with client(tmp_path / "s", "reg") as c:
        assert c.get("/").status_code == 404


def test_non_finite_floats_are_written_as_tf_serving_writes_them(models, tmp_path):
    push_like(models["multi"], tmp_path / "m", 1)
    with client(tmp_path / "m", "m") as c:
        response = c.post("/v1/models/m:predict", content=json.dumps(
            {"inputs": {"x": [[float("nan"), 1.0]], "tag": ["a"]}}).encode())
    assert response.status_code == 200 and '"total": [NaN]' in response.text
