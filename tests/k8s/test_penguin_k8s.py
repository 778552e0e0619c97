"""The penguin template end to end through the API stand-in, MLMD on MariaDB and PostgreSQL, compared with
a LocalRunner run of the same pipeline; the Job/ConfigMap objects it creates are kept as golden files."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest
from golden import REPO_PLACEHOLDER, compare, normalise, validate
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.k8s_manifests import LABEL_NODE
from k8s_support import REPO, K8sEnv

pytestmark = [pytest.mark.ml, pytest.mark.slow, pytest.mark.db]
RUN_ID = "20260101T000000-penguin"


def penguin(project: Path, root: Path) -> Pipeline:
    """The template's pipeline with its root (and the push destination) on the shared volume."""
    from headwater.pipelines.loader import load_pipeline
    from headwater.templates.scaffold import copy_template

    copy_template("penguin", project)
    template = load_pipeline(project / "pipeline.py")
    nodes = []
    for node in template.nodes:
        if node.id == "Push":
            node = dataclasses.replace(node, parameters={**node.parameters, "destination": str(root / "serving")})
        if node.id == "Train":
            node = node.with_resources(cpu="2", memory="4Gi").with_retries(1)
        nodes.append(node)
    return Pipeline(template.name, str(root), nodes, params=template.params, beam_args=template.beam_args)


def outcome(result: Any) -> dict[str, Any]:
    """Node states, output files (names) and artifact properties — what must match between runners."""
    out: dict[str, Any] = {}
    for nid, node in sorted(result.nodes.items()):
        arts = {}
        for key, artifacts in node.outputs.items():
            for art in artifacts:
                files = sorted({re.sub(r"tfevents\..*", "tfevents.*", str(p.relative_to(art.uri)))
                                for p in Path(art.uri).rglob("*") if p.is_file()})
                # Not compared: paths (the two runs have different roots), wall-clock seconds, the input-file
                # fingerprint (the data files are two copies) and the SavedModel's byte fingerprint (TF
                # writes a fresh fingerprint.pb per save). Metrics, blessing and splits are compared.
                props = {k: v for k, v in {**art.properties, **art.custom_properties}.items()
                         if (not isinstance(v, str) or "/" not in v)
                         and k not in ("seconds", "input_fingerprint", "model_fingerprint")}
                arts[key] = (files, props)
        out[nid] = (node.state, arts)
    return out


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Leaf paths where ``a`` and ``b`` differ (floats compared with a tolerance)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in a.keys() ^ b.keys()]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if close(a, b) else [f"{path}: {a!r} != {b!r}"]


def close(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="module")
def local_result(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("penguin-local")
    pipeline = penguin(base / "project", base / "root")
    return LocalRunner(quiet=True, metadata=f"sqlite:///{base / 'metadata.sqlite'}").run(pipeline)


@pytest.mark.parametrize("database", ["mysql_uri", "postgres_uri"])
def test_penguin_through_the_standin_matches_local(k8s: K8sEnv, tmp_path: Path, local_result: Any,
                                                   request: pytest.FixtureRequest, database: str) -> None:
    from headwater.pipelines.kubernetes import KubernetesRunner

    assert local_result.ok, {n: r.error for n, r in local_result.nodes.items() if r.error}
    uri = request.getfixturevalue(database)
    pipeline = penguin(tmp_path / "project", k8s.root)
    result = KubernetesRunner(k8s.config, metadata=uri, quiet=True).run(pipeline, run_id=RUN_ID)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    differing = differences(outcome(result), outcome(local_result))
    assert not differing, "\n".join(differing)
    [pushed] = result.outputs("Push", "pushed_model")
    assert pushed.custom_properties["pushed"] == 1
    assert (Path(pushed.custom_properties["pushed_destination"]) / "saved_model.pb").exists()

    bodies = {}
    for record in k8s.standin.requests:
        if record.verb == "create" and record.code == 201 and record.resource in ("jobs", "configmaps"):
            kind = "job" if record.resource == "jobs" else "configmap"
            bodies[f"{record.body['metadata']['labels'][LABEL_NODE]}-{kind}"] = record.body
    for body in bodies.values():
        validate(body)
    jobs = {stem: normalise(body, {str(k8s.root): "/mnt/headwater/root", str(tmp_path / "project"): "/app/project",
                                   str(REPO): REPO_PLACEHOLDER})
            for stem, body in bodies.items() if stem.endswith("-job")}
    assert sorted(jobs) == ["Evaluate-job", "Ingest-job", "Push-job", "Train-job", "Transform-job"]
    train = jobs["Train-job"]["spec"]
    assert train["backoffLimit"] == 1
    assert train["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    if database == "mysql_uri":
        compare("penguin", jobs)
