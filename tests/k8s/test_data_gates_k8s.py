"""Data gates on Kubernetes (through the API stand-in): the runner enforces them, so a blocked consumer
never gets a Job."""

from __future__ import annotations

from pathlib import Path

import hw_data_gate as d
from headwater.pipelines.kubernetes.manifests import LABEL_NODE
from k8s_support import K8sEnv


def test_blocking_gate_creates_no_job_for_its_consumers(k8s: K8sEnv, tmp_path: Path) -> None:
    result = k8s.runner().run(d.data_gated_pipeline(k8s.root, block=True, metadata=k8s.metadata))
    states = {n: r.state for n, r in result.nodes.items()}
    assert states == {"ingest": "done", "validate": "done", "train": "blocked", "push": "blocked", "other": "done"}
    assert result.nodes["train"].error == f"data validation 'validate' blocked the data: {d.REASON}"
    jobs = sorted(j["metadata"]["labels"][LABEL_NODE] for j in k8s.standin.objects("jobs", "headwater"))
    assert jobs == ["ingest", "other", "validate"]


def test_passing_gate_runs_the_consumers_as_jobs(k8s: K8sEnv) -> None:
    result = k8s.runner().run(d.data_gated_pipeline(k8s.root, metadata=k8s.metadata))
    assert result.ok, {n: r.error for n, r in result.nodes.items()}
    jobs = sorted(j["metadata"]["labels"][LABEL_NODE] for j in k8s.standin.objects("jobs", "headwater"))
    assert jobs == ["ingest", "other", "push", "train", "validate"]
