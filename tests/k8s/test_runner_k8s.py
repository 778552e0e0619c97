"""Pipelines through the KubernetesRunner against the API stand-in: same results as the LocalRunner."""

from __future__ import annotations

import json
from pathlib import Path

import hw_test_components as c
import pytest
from headwater.metadata import ArtifactState, connect
from headwater.metadata.errors import RunnerError
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.kubernetes.manifests import LABEL_NODE, LABEL_RUN
from k8s_pipelines import diamond
from k8s_support import K8sEnv


def summary(result) -> dict:
    """What must match between runners: states, output files and properties (not ids or paths)."""
    out = {}
    for nid, node in result.nodes.items():
        files = {}
        for key, arts in node.outputs.items():
            for art in arts:
                for f in sorted(Path(art.uri).rglob("*")):
                    if f.is_file():
                        files[f"{key}/{f.relative_to(art.uri)}"] = f.read_text()
                files[f"{key}:custom"] = json.dumps(dict(art.custom_properties), sort_keys=True)
                files[f"{key}:props"] = json.dumps({k: v for k, v in art.properties.items()}, sort_keys=True,
                                                   default=str)
        out[nid] = (node.state, files)
    return out


def test_diamond_matches_the_local_runner(k8s: K8sEnv, tmp_path: Path) -> None:
    local = LocalRunner(quiet=True, metadata=f"sqlite:///{tmp_path / 'local.sqlite'}").run(
        diamond(tmp_path / "local-root"))
    result = k8s.runner().run(diamond(k8s.root, metadata=k8s.metadata))
    assert result.ok, {n: r.error for n, r in result.nodes.items()}
    assert summary(result) == summary(local)
    assert (Path(result.outputs("j", "out")[0].uri) / "model.txt").read_text() == "ab"

    # One Job per node, labelled for the run; the pods' logs are in the nodes' log files.
    jobs = k8s.standin.objects("jobs", "headwater")
    assert sorted(j["metadata"]["labels"][LABEL_NODE] for j in jobs) == ["a", "b", "d", "j"]
    assert {j["metadata"]["labels"][LABEL_RUN] for j in jobs} == {result.run_id}
    assert k8s.standin.count("create", "jobs") == 4
    for nid in "abdj":
        log = Path(result.nodes[nid].log_path).read_text()
        assert f"headwater: node {nid!r} execution {result.nodes[nid].execution_id} succeeded" in log
    # MLMD: outputs LIVE, written by the orchestrator only.
    store = connect(k8s.metadata)
    [model] = store.get_artifacts([result.outputs("j", "out")[0].id])
    assert model.state == ArtifactState.LIVE and model.custom_properties["joined"] == "ab"
    # The spec ConfigMaps are gone once the results were published.
    k8s.standin.wait_for(lambda: not k8s.standin.objects("configmaps", "headwater"))
    # Pods got neither database credentials nor an API token.
    for pod in k8s.standin.objects("pods", "headwater"):
        env = {e["name"] for e in pod["spec"]["containers"][0].get("env", [])}
        assert "HEADWATER_METADATA" not in env and pod["spec"]["automountServiceAccountToken"] is False

    again = k8s.runner().run(diamond(k8s.root, metadata=k8s.metadata))
    assert {n.state for n in again.nodes.values()} == {"cached"}
    assert k8s.standin.count("create", "jobs") == 4


def test_user_code_failure_is_reported_as_the_users(k8s: K8sEnv) -> None:
    a = c.produce(value="a").with_id("a")
    bad = c.fail(examples=a.outputs.data, message="no good").with_id("bad")
    after = c.consume(examples=a.outputs.data).with_id("after")
    pipeline = Pipeline("failing", str(k8s.root), [a, bad, after], metadata=k8s.metadata)
    result = k8s.runner().run(pipeline)
    assert not result.ok
    assert result.nodes["bad"].state == "failed" and result.nodes["after"].state == "done"
    assert "raised ValueError: no good" in result.nodes["bad"].error
    log = Path(result.nodes["bad"].log_path).read_text()
    assert "about to fail" in log and "ValueError: no good" in log
    store = connect(k8s.metadata)
    execution = store.get_execution(result.nodes["bad"].execution_id)
    assert execution.state == "FAILED" and execution.properties["__user_error__"] is True


def test_local_root_without_a_claim_is_refused_before_anything_runs(k8s: K8sEnv) -> None:
    with pytest.raises(RunnerError, match="executor pods cannot see this machine's disk: put the root on a "
                                          "ReadWriteMany volume"):
        k8s.runner(pipeline_root_claim=None).run(diamond(k8s.root, metadata=k8s.metadata))
    assert k8s.standin.count("create", "jobs") == 0


@pytest.mark.db
@pytest.mark.parametrize("backend", ["mysql_uri", "postgres_uri"])
def test_metadata_on_a_database_server(k8s: K8sEnv, tmp_path: Path, request: pytest.FixtureRequest,
                                       backend: str) -> None:
    uri = request.getfixturevalue(backend)
    local = LocalRunner(quiet=True, metadata=f"sqlite:///{tmp_path / 'local.sqlite'}").run(
        diamond(tmp_path / "local-root"))
    from headwater.pipelines.kubernetes import KubernetesRunner

    result = KubernetesRunner(k8s.config, metadata=uri, quiet=True).run(diamond(k8s.root))
    assert result.ok and result.metadata.startswith(uri.split("://")[0])
    assert summary(result) == summary(local)
    store = connect(uri)
    [model] = store.get_artifacts([result.outputs("j", "out")[0].id])
    assert model.state == ArtifactState.LIVE and model.custom_properties["joined"] == "ab"
    # The executor pods never saw the connection string.
    for job in k8s.standin.objects("jobs", "headwater"):
        assert uri.split("@")[-1] not in json.dumps(job)
