"""The penguin template end to end through the API stand-in, MLMD on MariaDB and PostgreSQL, compared with
a LocalRunner run of the same pipeline; the Job/ConfigMap objects it creates are kept as golden files.
Once more with the pipeline root (and the input data) in an S3 bucket instead of a volume."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from golden import REPO_PLACEHOLDER, compare, normalise, validate
from headwater.components import storage
from headwater.metadata import connect
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.kubernetes.manifests import LABEL_NODE
from k8s_support import REPO, K8sEnv, clear_scratch

pytestmark = [pytest.mark.ml, pytest.mark.slow, pytest.mark.db]

#: The penguin template's resolver nodes.
RESOLVERS = ("baseline", "PreviousStatistics")
RUN_ID = "20260101T000000-penguin"


def penguin(project: Path, root: Path | str, *, serving: Path | None = None, data: str | None = None,
            holdout: str | None = None) -> Pipeline:
    """The template's pipeline with its root (and the push destination) on the shared volume; or with its
    root in an object store, the push destination ``serving`` (Push writes to a file system path) and the
    input data at ``data`` (and the holdout penguins BatchPredict predicts on at ``holdout``)."""
    from headwater.pipelines.loader import load_pipeline
    from headwater.templates.scaffold import copy_template

    copy_template("penguin", project)
    template = load_pipeline(project / "pipeline.py")
    nodes = []
    for node in template.nodes:
        if node.id == "Push":
            destination = str(serving or Path(root, "serving"))
            node = dataclasses.replace(node, parameters={**node.parameters, "destination": destination})
        if node.id == "Ingest" and data:
            node = dataclasses.replace(node, parameters={**node.parameters, "input_base": data})
        if node.id == "IngestHoldout" and holdout:
            node = dataclasses.replace(node, parameters={**node.parameters, "input_base": holdout})
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
                # Listed where the artifact is: a local folder, or every object under its URI in a bucket.
                files = sorted({re.sub(r"tfevents\..*", "tfevents.*", p[len(art.uri):].lstrip("/"))
                                for p in storage.list_files(art.uri)})
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
    assert sorted(jobs) == ["BatchPredict-job", "Evaluate-job", "ImportSchema-job", "InfraValidate-job",
                           "Ingest-job", "IngestHoldout-job", "Push-job", "Statistics-job", "Train-job",
                           "Transform-job", "Validate-job"]
    train = jobs["Train-job"]["spec"]
    assert train["backoffLimit"] == 1
    assert train["template"]["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    if database == "mysql_uri":
        compare("penguin", jobs)


S3_RUN_ID = "20260101T000000-penguin-s3"


def test_penguin_with_the_root_in_a_bucket_matches_local(k8s: K8sEnv, tmp_path: Path, local_result: Any,
                                                         s3_root: str, postgres_uri: str) -> None:
    """No volume at all: the data, every artifact, the executor results and the logs are objects in the
    bucket; the pods get the endpoint as environment and the keys from a Secret, never the database."""
    from headwater.pipelines.kubernetes import KubernetesRunner

    assert local_result.ok, {n: r.error for n, r in local_result.nodes.items() if r.error}
    uri = postgres_uri
    data = s3_root.rsplit("/", 1)[0] + "/data"
    csv = (REPO / "templates" / "penguin" / "data" / "penguins.csv").read_bytes()
    storage.write_bytes(f"{data}/penguins.csv", csv)
    holdout = s3_root.rsplit("/", 1)[0] + "/holdout"
    storage.write_bytes(f"{holdout}/penguins_holdout.csv",
                        (REPO / "templates" / "penguin" / "holdout" / "penguins_holdout.csv").read_bytes())
    pipeline = penguin(tmp_path / "project", s3_root, serving=tmp_path / "serving", data=data, holdout=holdout)
    clear_scratch(pipeline.name, S3_RUN_ID)
    try:
        result = KubernetesRunner(k8s.object_store_config(), metadata=uri, quiet=True).run(pipeline,
                                                                                            run_id=S3_RUN_ID)
    finally:
        clear_scratch(pipeline.name, S3_RUN_ID)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    differing = differences(outcome(result), outcome(local_result))
    assert not differing, "\n".join(differing)

    # Every output is in the bucket, under its node; none of it is on this machine's disk.
    store = connect(uri)
    for nid, node in result.nodes.items():
        for arts in node.outputs.values():
            for art in arts:
                if nid in RESOLVERS:  # they pick existing artifacts (nothing on a first run)
                    continue
                assert art.uri.startswith(f"{s3_root}/{nid}/") and storage.list_files(art.uri), art.uri
        if node.state == "done" and nid not in RESOLVERS:  # resolvers run in the orchestrator: no log
            log_url = store.get_execution(node.execution_id).properties["__log_path__"]
            assert log_url == f"{s3_root}/_logs/{S3_RUN_ID}/{nid}.{node.execution_id}.log"
            assert f"execution {node.execution_id} succeeded" in storage.read_bytes(log_url).decode()
    [model] = result.outputs("Train", "model")
    assert storage.list_files(f"{model.uri}/Format-Serving")
    # Push copied the blessed model from the bucket to its destination, a file system path (the stand-in's
    # pods share this machine's disk; in a cluster it would be a path the Push pod mounts): the one copy.
    [pushed] = result.outputs("Push", "pushed_model")
    assert pushed.custom_properties["pushed"] == 1
    assert (Path(pushed.custom_properties["pushed_destination"]) / "saved_model.pb").exists()
    assert list(k8s.root.iterdir()) == []
    assert [p for p in tmp_path.rglob("saved_model.pb") if tmp_path / "serving" not in p.parents] == []

    jobs = [r.body for r in k8s.standin.requests if r.verb == "create" and r.code == 201 and r.resource == "jobs"]
    assert len(jobs) == 11  # Ingest, Statistics, ImportSchema, Validate, Transform, Train, Evaluate, InfraValidate,
    #                         Push, IngestHoldout, BatchPredict
    for job in jobs:
        validate(job)
        pod = job["spec"]["template"]["spec"]
        assert {v["name"] for v in pod["volumes"]} == {"execution-spec", "tmp"}
        assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
        assert "HEADWATER_METADATA" not in json.dumps(job) and uri.split("@")[-1] not in json.dumps(job)
